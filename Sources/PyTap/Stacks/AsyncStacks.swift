/// Continues a thread's stack through asyncio tasks (`sample --async`): the running
/// task's frames (the thread's frames down to the task's coroutine), then the coroutine
/// stack of the task awaiting it, and so on up to a task no task awaits; each task's
/// frames stand on a `task NAME` marker. The event loop's own frames below the running
/// task are left out.
///
/// Which task awaits which comes from a graph of all tasks (`AsyncioReader.tasks()`),
/// read again when the running task is not in it (at most every `refreshInterval`) and
/// every second; the awaiting tasks' coroutine stacks are read afresh for every sample.
public final class AsyncStackTracker {
    public struct Hop: Equatable, Sendable {
        public var taskName: String
        /// The task's frames, innermost first.
        public var frames: [RawFrame]
    }

    public let asyncio: AsyncioReader
    private var graph: [UInt64: RawAsyncTask] = [:]
    private var lastRefresh: UInt64?
    static let refreshInterval: UInt64 = 100_000_000
    static let maximumAge: UInt64 = 1_000_000_000
    /// At most this many tasks are followed from the running one (remote data may loop).
    public static let maximumHops = 64

    public init(asyncio: AsyncioReader) {
        self.asyncio = asyncio
    }

    /// The task hops of a thread's stack, the running task first; nil when no task runs on
    /// the thread (its stack is then taken as it is).
    public func hops(of raw: RawStack, thread: ThreadState, time: UInt64) -> [Hop]? {
        guard !raw.frameAddresses.isEmpty else { return nil }
        var running: (task: UInt64, frameIndex: Int)?
        for candidate in asyncio.runningTaskCandidates(of: thread) {
            guard let coroutine = try? asyncio.coroutine(ofTask: candidate), coroutine != 0,
                  let frame = try? asyncio.frameAddress(ofCoroutine: coroutine),
                  let index = raw.frameAddresses.firstIndex(of: frame) else { continue }
            running = (candidate, index)
            break
        }
        guard let running, let name = asyncio.taskName(running.task) else { return nil }
        var hops = [Hop(taskName: name, frames: Array(raw.frames[...running.frameIndex]))]
        if let lastRefresh, time &- lastRefresh > AsyncStackTracker.maximumAge { refresh(time: time) }
        if graph[running.task] == nil { refresh(time: time) }
        var visited: Set<UInt64> = [running.task]
        var current = running.task
        while hops.count < AsyncStackTracker.maximumHops, let awaiter = graph[current]?.awaitedBy.first {
            guard visited.insert(awaiter).inserted else {
                hops.append(Hop(taskName: "(cycle)", frames: []))
                break
            }
            let chain = (try? asyncio.coroutine(ofTask: awaiter)).map { asyncio.coroutineChain(from: $0) }
            hops.append(Hop(taskName: graph[awaiter]?.name ?? asyncio.taskName(awaiter) ?? "?",
                            frames: (chain?.frames ?? []).reversed()))
            current = awaiter
        }
        return hops
    }

    private func refresh(time: UInt64) {
        if let lastRefresh, time &- lastRefresh < AsyncStackTracker.refreshInterval { return }
        lastRefresh = time
        guard let tasks = try? asyncio.tasks() else { return }
        graph = Dictionary(tasks.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
