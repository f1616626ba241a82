/// One call seen by a call-graph tracer: the function, when it was entered and when it
/// returned (µs since its invocation's trigger entry; nil when its return was not seen),
/// and the calls it made.
public struct CallNode: Sendable, Equatable {
    public var name: String
    public var start: Double
    public var end: Double?
    public var children: [CallNode] = []

    public init(name: String, start: Double, end: Double? = nil, children: [CallNode] = []) {
        self.name = name
        self.start = start
        self.end = end
        self.children = children
    }
}

/// One traced run of the trigger function: the thread and the call tree under it.
public struct CallInvocation: Sendable, Equatable {
    public var number: Int
    public var tid: Int32
    public var threadName: String
    /// When the trigger was entered, in CLOCK_MONOTONIC ns.
    public var startTime: UInt64
    public var root: CallNode
    /// Whether the trigger's extent ended without its return being seen.
    public var truncated = false
}

/// Builds call trees from a thread's entries and returns in order, matching them by the
/// stack pointer at each function's entry rather than by counting: a return the kernel did
/// not report (uretprobes past 64 nested ones per thread are omitted) would otherwise shift
/// every later return. A function is inside every open call whose entry stack pointer is
/// at least its own.
public struct CallTreeBuilder {
    private struct Open {
        var node: CallNode
        var stack: UInt64
        var function: UInt64
    }

    public let number: Int
    public let tid: Int32
    public let threadName: String
    public let startTime: UInt64
    private var open: [Open] = []
    /// The root once closed.
    private var finished: CallNode?
    public private(set) var truncated = false

    public var isFinished: Bool { finished != nil }

    public init(number: Int, tid: Int32, threadName: String, startTime: UInt64, root name: String, function: UInt64, stack: UInt64) {
        self.number = number
        self.tid = tid
        self.threadName = threadName
        self.startTime = startTime
        open = [Open(node: CallNode(name: name, start: 0), stack: stack, function: function)]
    }

    private func micros(_ time: UInt64) -> Double { Double(time &- startTime) / 1000 }

    public mutating func enter(name: String, function: UInt64, stack: UInt64, time: UInt64) {
        guard finished == nil else { return }
        closeDeeper(than: stack)
        open.append(Open(node: CallNode(name: name, start: micros(time)), stack: stack, function: function))
    }

    /// A return at `stack` of `function` (nil: of whatever call entered there).
    public mutating func leave(function: UInt64?, stack: UInt64, time: UInt64) {
        guard finished == nil else { return }
        closeDeeper(than: stack)
        // The innermost open call at this stack pointer with this function (a tail call
        // shares its caller's stack pointer).
        guard let index = open.lastIndex(where: { $0.stack == stack && (function == nil || $0.function == function) }) else { return }
        while open.count > index + 1 { popOpen(end: nil) }
        popOpen(end: micros(time))
    }

    /// The trigger's extent ended without its return (or the trace stopped).
    public mutating func end() {
        guard finished == nil else { return }
        truncated = true
        while !open.isEmpty { popOpen(end: nil) }
    }

    /// Calls deeper than `stack` whose returns were not seen.
    private mutating func closeDeeper(than stack: UInt64) {
        while open.count > 1, let last = open.last, last.stack < stack { popOpen(end: nil) }
    }

    private mutating func popOpen(end: Double?) {
        var closed = open.removeLast()
        closed.node.end = end
        if open.isEmpty {
            finished = closed.node
        } else {
            open[open.count - 1].node.children.append(closed.node)
        }
    }

    /// The invocation, once the trigger returned (or `end` was called).
    public var invocation: CallInvocation? {
        finished.map { CallInvocation(number: number, tid: tid, threadName: threadName, startTime: startTime, root: $0, truncated: truncated) }
    }
}
