/// One function's share of a set of samples.
public struct FunctionStats: Sendable {
    /// The function (at function level: its first line, not the sampled line).
    public var function: Frame
    /// Samples where it was the innermost frame.
    public var own: Int
    /// Samples where it was anywhere on the stack (counted once per sample).
    public var total: Int

    public init(function: Frame, own: Int, total: Int) {
        self.function = function
        self.own = own
        self.total = total
    }
}

/// Aggregates sampled stacks by function: what `pytap top` shows and what the end-of-run
/// summary ranks.
public struct FunctionTable: Sendable {
    public enum SortKey: String, CaseIterable, Sendable {
        case own, total
    }

    public private(set) var rows: [FunctionStats] = []
    public private(set) var samples = 0

    public init() {}

    /// Builds the table from sample counts per stack id.
    public init(counts: [UInt32: Int], stacks: StackTable, frames: FrameTable, functionKeys: inout [UInt32: Frame]) {
        var byFunction = [Frame: FunctionStats]()
        var seen = Set<Frame>()
        for (stack, count) in counts where count > 0 {
            samples += count
            let ids = stacks[stack]
            seen.removeAll(keepingCapacity: true)
            for (position, id) in ids.enumerated() {
                let key: Frame
                if let cached = functionKeys[id] {
                    key = cached
                } else {
                    let function = frames[id].atFunctionLevel
                    functionKeys[id] = function
                    key = function
                }
                // Markers are roots (process, thread) or notes, except `<GC>`: time spent collecting.
                if key.kind == .marker && key != .garbageCollection { continue }
                var entry = byFunction[key] ?? FunctionStats(function: key, own: 0, total: 0)
                if seen.insert(key).inserted { entry.total += count }
                if position == ids.count - 1 { entry.own += count }
                byFunction[key] = entry
            }
        }
        rows = Array(byFunction.values)
        sort(by: .own)
    }

    public mutating func sort(by key: SortKey) {
        rows.sort { lhs, rhs in
            let l = key == .own ? (lhs.own, lhs.total) : (lhs.total, lhs.own)
            let r = key == .own ? (rhs.own, rhs.total) : (rhs.total, rhs.own)
            if l != r { return l > r }
            return lhs.function.label < rhs.function.label
        }
    }
}
