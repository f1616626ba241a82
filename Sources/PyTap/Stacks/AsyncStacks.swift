/// Continues a thread's stack through asyncio tasks (`sample --async`): the running
/// task's frames (the thread's frames down to the task's coroutine), then the coroutine
/// stack of the task awaiting it, and so on up to a task no task awaits; each task's
/// frames stand on a `task NAME` marker. The event loop's own frames below the running
/// task are left out.
///
/// Which task awaits which comes from a graph of all tasks (`AsyncioReader.tasks()`),
/// read again when the running task is not in it and every second (as `refresh` allows); the awaiting tasks' coroutine stacks are read afresh for every sample.
/// With `--idle`, the tasks waiting to run are counted too (`idleTasks`).
public final class AsyncStackTracker {
    public struct Hop: Equatable, Sendable {
        public var taskName: String
        /// The task's frames, innermost first.
        public var frames: [RawFrame]
    }

    public let asyncio: AsyncioReader
    private var graph: [UInt64: RawAsyncTask] = [:]
    private var lastRefresh: UInt64?
    /// Counts the reads of the graph: an idle task's hops are the same until the next.
    public private(set) var generation = 0
    /// How long the last read of the graph took (ns).
    private var lastRefreshCost: UInt64 = 0
    /// The idle leaves of `graph` and their loops' threads, found once per refresh.
    private var idleLeaves: [(task: UInt64, thread: UInt64)]?
    /// The coroutine frame address of each task of `graph`, built when first needed.
    private var tasksByFrame: [UInt64: UInt64]?
    /// Tasks `hops` found running since the last `idleTasks`.
    private var runningNow = Set<UInt64>()
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
            guard let frame = coroutineFrame(ofTask: candidate), let index = raw.frameAddresses.firstIndex(of: frame) else { continue }
            running = (candidate, index)
            break
        }
        if running == nil {
            if lastRefresh == nil { refresh(time: time) }
            running = taskOwningFrame(in: raw)
        }
        guard let running, let name = asyncio.taskName(running.task) else { return nil }
        runningNow.insert(running.task)
        var hops = [Hop(taskName: name, frames: Array(raw.frames[...running.frameIndex]))]
        if let lastRefresh, time &- lastRefresh > AsyncStackTracker.maximumAge { refresh(time: time) }
        if graph[running.task] == nil { refresh(time: time) }
        continueThroughAwaiters(of: running.task, hops: &hops) { awaiter in
            let chain = (try? self.asyncio.coroutine(ofTask: awaiter)).map { self.asyncio.coroutineChain(from: $0) }
            return (chain?.frames ?? []).reversed()
        }
        return hops
    }

    /// The task of the graph whose coroutine's frame is on the stack, the innermost one
    /// (an eager task starts inside its creator): for when the running-task bookkeeping,
    /// read after the walk, names no task of this stack because the loop switched tasks
    /// meanwhile. The task is checked to own that frame still (a freed coroutine's memory
    /// may hold another's).
    private func taskOwningFrame(in raw: RawStack) -> (task: UInt64, frameIndex: Int)? {
        if tasksByFrame == nil {
            var index = [UInt64: UInt64]()
            for task in graph.keys {
                if let frame = coroutineFrame(ofTask: task) { index[frame] = task }
            }
            tasksByFrame = index
        }
        for (position, frame) in raw.frameAddresses.enumerated() {
            if let task = tasksByFrame?[frame], coroutineFrame(ofTask: task) == frame { return (task, position) }
        }
        return nil
    }

    private func coroutineFrame(ofTask task: UInt64) -> UInt64? {
        guard let coroutine = try? asyncio.coroutine(ofTask: task), coroutine != 0,
              let frame = try? asyncio.frameAddress(ofCoroutine: coroutine), frame != 0 else { return nil }
        return frame
    }

    /// Appends a hop for each task awaiting `task`, then each awaiting that one, and so on
    /// (the first awaiter of each); `frames` gives a task's frames, innermost first.
    private func continueThroughAwaiters(of task: UInt64, hops: inout [Hop], frames: (UInt64) -> [RawFrame]) {
        var visited: Set<UInt64> = [task]
        var current = task
        while hops.count < AsyncStackTracker.maximumHops, let awaiter = graph[current]?.awaitedBy.first {
            guard visited.insert(awaiter).inserted else {
                hops.append(Hop(taskName: "(cycle)", frames: []))
                break
            }
            hops.append(Hop(taskName: graph[awaiter]?.name ?? asyncio.taskName(awaiter) ?? "?", frames: frames(awaiter)))
            current = awaiter
        }
    }

    /// A task waiting to run, as `sample --async --idle` counts it.
    public struct IdleTask: Sendable {
        /// The task's address.
        public var task: UInt64
        /// `threading.get_ident()` of the thread running the task's event loop.
        public var threadIdent: UInt64
        /// The task's hops, the idle task first: like a running task's.
        public var hops: [Hop]
    }

    /// The idle tasks of the target (`--idle`): every pending task that awaits no other task
    /// (a leaf of the awaiting graph) and did not run in this round (`hops` found it
    /// running), continued through the tasks awaiting it like a running task. Tasks whose
    /// loop does not run have no thread and are left out. The graph is read again as
    /// `refresh` allows, not every round: idle tasks seldom move, and reading thousands of
    /// them every round would starve the sampling of the threads.
    public func idleTasks(time: UInt64) -> [IdleTask] {
        defer { runningNow.removeAll(keepingCapacity: true) }
        refresh(time: time)
        if idleLeaves == nil {
            var awaiting = Set<UInt64>()
            for task in graph.values { awaiting.formUnion(task.awaitedBy) }
            var leaves = [(task: UInt64, thread: UInt64)]()
            for task in graph.values.sorted(by: { $0.address < $1.address })
            where task.state == .pending && !awaiting.contains(task.address) {
                guard let thread = asyncio.loopThreadIdent(ofTask: task.address) else { continue }
                leaves.append((task.address, thread))
            }
            idleLeaves = leaves
        }
        var result = [IdleTask]()
        for leaf in idleLeaves ?? [] where !runningNow.contains(leaf.task) {
            guard let task = graph[leaf.task] else { continue }
            var hops = [Hop(taskName: task.name, frames: task.coroutineFrames.reversed())]
            continueThroughAwaiters(of: leaf.task, hops: &hops) { self.graph[$0]?.coroutineFrames.reversed() ?? [] }
            result.append(IdleTask(task: leaf.task, threadIdent: leaf.thread, hops: hops))
        }
        return result
    }

    /// Reads the graph again unless it was read less than `refreshInterval` ago, or less
    /// than ten times what that read took: reading a graph of thousands of tasks then
    /// takes at most about a tenth of the sampler's time.
    private func refresh(time: UInt64) {
        if let lastRefresh, time &- lastRefresh < max(AsyncStackTracker.refreshInterval, lastRefreshCost &* 10) { return }
        lastRefresh = time
        idleLeaves = nil
        tasksByFrame = nil
        generation += 1
        let started = MonotonicClock.now()
        defer { lastRefreshCost = MonotonicClock.now() &- started }
        guard let tasks = try? asyncio.tasks() else { return }
        graph = Dictionary(tasks.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
