/// The allocations still alive at the end of a trace, grouped by the Python stack that made
/// them, biggest first: what `pytap memtrace` prints.
public struct MemtraceReport: Sendable {
    public struct Survivors: Sendable {
        public var count: Int
        public var bytes: UInt64
        /// First and last allocation of the group, nanoseconds after tracing started.
        public var firstNanoseconds: UInt64
        public var lastNanoseconds: UInt64
        /// Innermost first; a marker when the thread's stack was unknown.
        public var frames: [Frame]
    }

    public var survivors: [Survivors]
    /// Counted by the probes; nil for tracemalloc, which counts neither.
    public var allocations: UInt64?
    public var frees: UInt64?
    public var lost: UInt64
    public var stacksLost: UInt64
    public var hits: UInt64?
    public var seconds: Double
    public var minimumAge: Double?
    public var via = "probes"
    public var functions: [String]

    /// Groups `blocks` by their resolved stacks; `minimumAge` (seconds) keeps only blocks
    /// at least that old at the end.
    public init(result: MemtraceResult, minimumAge: Double?, frames: (ProbedFrame) -> Frame) {
        var groups: [[Frame]: Survivors] = [:]
        var resolved: [UInt64: [Frame]] = [:]
        // The newest allocation time kept (an age beyond the clock's start keeps nothing).
        let cutoff = minimumAge.map { age -> UInt64 in
            let nanoseconds = UInt64(min(max(0, age), 1e9) * 1e9)
            return result.end > nanoseconds ? result.end - nanoseconds : 0
        }
        for block in result.blocks {
            if let cutoff, block.time > cutoff || cutoff == 0 { continue }
            let stack: [Frame]
            if let known = resolved[block.stack] {
                stack = known
            } else {
                if block.stack == 0 {
                    stack = [.marker("(thread \(block.tid): stack unknown)")]
                } else if let probed = result.stacks[block.stack] {
                    var decoded = probed.map(frames)
                    if result.truncatedStacks.contains(block.stack) { decoded.append(.marker("(more frames)")) }
                    stack = decoded.isEmpty ? [.marker("(no Python frame)")] : decoded
                } else {
                    stack = [.marker("(stack not kept: the stacks map was full)")]
                }
                resolved[block.stack] = stack
            }
            let time = block.time &- min(block.time, result.start)
            if var group = groups[stack] {
                group.count += 1
                group.bytes += block.size
                group.firstNanoseconds = min(group.firstNanoseconds, time)
                group.lastNanoseconds = max(group.lastNanoseconds, time)
                groups[stack] = group
            } else {
                groups[stack] = Survivors(count: 1, bytes: block.size, firstNanoseconds: time, lastNanoseconds: time, frames: stack)
            }
        }
        survivors = MemtraceReport.biggestFirst(Array(groups.values))
        allocations = result.allocations
        frees = result.frees
        lost = result.lost
        stacksLost = result.stacksLost
        hits = result.hits
        seconds = Double(result.end &- result.start) / 1e9
        self.minimumAge = minimumAge
        functions = result.functions
    }

    /// Groups found some other way (tracemalloc), with no allocation counts.
    public init(survivors: [Survivors], seconds: Double, minimumAge: Double?, via: String, functions: [String]) {
        self.survivors = MemtraceReport.biggestFirst(survivors)
        lost = 0
        stacksLost = 0
        self.seconds = seconds
        self.minimumAge = minimumAge
        self.via = via
        self.functions = functions
    }

    /// By bytes, then count, then stack: a stable order.
    static func biggestFirst(_ groups: [Survivors]) -> [Survivors] {
        groups.sorted { ($0.bytes, $0.count, $1.frames.map(\.label).joined()) > ($1.bytes, $1.count, $0.frames.map(\.label).joined()) }
    }

    /// For people: a header, then each group (count, bytes, first/last time, the stack
    /// innermost first), at most `limit` groups.
    public func text(limit: Int = 50) -> String {
        let totalBytes = survivors.reduce(UInt64(0)) { $0 + $1.bytes }
        let totalCount = survivors.reduce(0) { $0 + $1.count }
        var out = "Traced \(String(format1: seconds)) s (via \(via): \(functions.joined(separator: ", ")))"
        if let allocations, let frees, let hits {
            out += ": \(allocations) allocations, \(frees) frees, \(lost) lost, \(hits) probe hits.\n"
        } else {
            out += ".\n"
        }
        out += "Alive at the end\(minimumAge.map { " and at least \(String(format1: $0)) s old" } ?? ""): "
        out += "\(totalCount) blocks, \(totalBytes) bytes, in \(survivors.count) stacks.\n"
        if stacksLost > 0 { out += "(\(stacksLost) stacks were not kept: the stacks map was full)\n" }
        for group in survivors.prefix(limit) {
            out += "\n\(group.count) blocks, \(group.bytes) bytes, allocated from \(String(format1: Double(group.firstNanoseconds) / 1e9)) s "
            out += "to \(String(format1: Double(group.lastNanoseconds) / 1e9)) s:\n"
            for frame in group.frames { out += "    " + frame.label.escapingControlCharacters + "\n" }
        }
        if survivors.count > limit { out += "\n(\(survivors.count - limit) more stacks; --json lists them all)\n" }
        return out
    }

    /// `{"survivors": [{"count", "bytes", "first_ms", "last_ms", "type", "frames": [...]}],
    /// "allocations", "frees", "lost", "via"}`, frames innermost first.
    public func json() -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("via", via)
        writer.key("seconds"); writer.number(seconds)
        writer.field("allocations", allocations)
        writer.field("frees", frees)
        writer.field("lost", lost)
        writer.field("stacks_lost", stacksLost)
        writer.field("probe_hits", hits)
        writer.key("min_age"); if let minimumAge { writer.number(minimumAge) } else { writer.null() }
        writer.key("survivors")
        writer.beginArray()
        for group in survivors {
            writer.beginObject()
            writer.field("count", group.count)
            writer.field("bytes", group.bytes)
            writer.key("first_ms"); writer.number(Double(group.firstNanoseconds) / 1e6)
            writer.key("last_ms"); writer.number(Double(group.lastNanoseconds) / 1e6)
            writer.key("type"); writer.null()
            DumpReport.writeStack(group.frames, defect: nil, to: &writer) { _, frame, json in
                json.field("kind", frame.kind.rawValue)
                DumpReport.writeLocation(frame, to: &json)
                json.field("module", frame.module)
            }
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        return writer.output + "\n"
    }
}

private extension String {
    /// One decimal.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
