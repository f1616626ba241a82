/// A thread's Python frames as the 3.11+ handler records tell them (bpf/pyopcodes.bpf.c),
/// turned into balanced calls and returns. A record names the thread's current frame and
/// its callers (innermost first); frames that left without a record of their own (an
/// exception carried them away, a C caller swallowed it) are closed when a later record
/// shows them gone, and frames that started without one (a generator resumed by `throw()`)
/// are opened when a later record shows them. Frames are (address, code object) pairs:
/// frame addresses are reused as soon as a frame is gone.
public struct PythonFrameChain {
    public struct Entry: Equatable, Sendable {
        public var frame: UInt64
        public var code: UInt64
        public init(frame: UInt64, code: UInt64) { self.frame = frame; self.code = code }
    }

    /// A call or return, with its depth in the chain (0: the outermost seen).
    public enum Step: Equatable, Sendable {
        case enter(Entry, depth: Int, recorded: Bool)
        case leave(Entry, depth: Int)
    }

    /// What a record says.
    public enum Event: Sendable { case start, leave, raise }

    public private(set) var open: [Entry] = []
    /// The frame of the last record when that record was a start: a start of the same
    /// frame right after it is the same start run again (3.12+ re-dispatch `RESUME` after
    /// re-instrumenting a code object). A frame that really starts again at the same
    /// address has left in between, and its exception or return made a record.
    private var lastStart: Entry?

    public init() {}

    /// The steps one record implies. `chain`: the current frame first, then its callers.
    public mutating func apply(_ event: Event, chain: [Entry]) -> [Step] {
        guard let current = chain.first else { return [] }
        var steps = [Step]()
        let repeated = event == .start && lastStart == current && open.last == current
        lastStart = event == .start ? current : nil
        if repeated { return [] }
        switch event {
        case .start:
            // A new frame (even at an address seen before): its callers decide what is open.
            align(to: Array(chain.dropFirst()), steps: &steps)
            open.append(current)
            steps.append(.enter(current, depth: open.count - 1, recorded: true))
        case .leave:
            align(to: chain, steps: &steps)
            if open.last == current {
                open.removeLast()
                steps.append(.leave(current, depth: open.count))
            }
        case .raise:
            align(to: chain, steps: &steps)
        }
        return steps
    }

    /// Makes the open frames end with `chain` (innermost first): closes the frames above
    /// the innermost one it shares with them, opens those of `chain` below it. When none is
    /// shared (the chain began before the trace), every open frame is closed.
    private mutating func align(to chain: [Entry], steps: inout [Step]) {
        var keep = 0
        var missing = chain.count
        for (depth, entry) in chain.enumerated() {
            if let index = open.lastIndex(of: entry) {
                keep = index + 1
                missing = depth
                break
            }
        }
        if missing == chain.count { keep = 0; missing = 0 }
        while open.count > keep {
            let gone = open.removeLast()
            steps.append(.leave(gone, depth: open.count))
        }
        for entry in chain.prefix(missing).reversed() {
            open.append(entry)
            steps.append(.enter(entry, depth: open.count - 1, recorded: false))
        }
    }

    /// Closes every open frame (the trace ended).
    public mutating func reset() {
        open = []
        lastStart = nil
    }
}
