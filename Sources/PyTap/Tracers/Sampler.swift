/// What `Sampler` samples and how often.
public struct SamplerOptions: Sendable {
    /// Sampling rounds per second; each round samples every selected thread.
    public var rate: Int = 100
    /// Also sample threads that are not on a CPU (sleeping, waiting for I/O or the GIL).
    public var includeIdle = false
    /// Only keep samples of the thread holding the GIL.
    public var onlyGIL = false
    /// Put a "thread NAME (tid N)" frame at the base of each stack.
    public var threadRoots = false
    /// Follow child processes (e.g. multiprocessing workers); each stack is rooted in a
    /// "process PID (command)" frame.
    public var followChildren = false
    /// Aggregate by function (first line) instead of by line.
    public var byFunction = false
    /// Put a `<GC>` frame on top of the stack of the thread running the cyclic garbage collector.
    public var gcFrames = true
    /// Only keep samples of threads handling or raising an exception (`--mode exception`).
    public var onlyExceptions = false
    /// Stop after this many seconds, even between two rounds of a low rate.
    public var stopAfter: Double?
    /// Find out for every sample whether its thread was on a CPU and held the GIL (a stat
    /// read per thread with `includeIdle`, a GIL read per round), for outputs that show it.
    public var recordsThreadStates = false
    /// Continue each stack through the asyncio tasks awaiting the running one (`--async`);
    /// with `includeIdle`, count each waiting task too.
    public var asyncTasks = false

    public init() {}
}

/// Counters of a recording, for the progress line and the summary.
public struct SamplerStatistics: Sendable {
    /// Sampling rounds done.
    public var rounds = 0
    /// Rounds skipped because a round took longer than the interval.
    public var missedRounds = 0
    /// Stacks recorded.
    public var samples = 0
    /// Stacks dropped because they changed while read, even after retries (torn).
    public var torn = 0
    /// Walks repeated because the stack changed under them (then succeeded).
    public var retries = 0
    /// Stacks or thread lists dropped because memory could not be read.
    public var errors = 0
    /// `errors` by cause (e.g. "code object unreadable"), for the summary.
    public var errorKinds: [String: Int] = [:]
    /// Processes sampled so far.
    public var processes = 0
    /// Distinct threads sampled so far.
    public var threads = 0
    /// Times a sampled process exec'd a new Python and was re-attached.
    public var execs = 0
    /// Native sampling: samples the kernel dropped because pytap did not drain them in time.
    public var lostSamples = 0
    /// Native sampling: samples taken from the ring buffer, and the bytes of user stack the
    /// program copied for them.
    public var stackCopies = 0
    public var stackBytesCopied = 0
    /// Native sampling: reads of the target's live memory made rebuilding the samples (code
    /// objects first met, stack past the copy); the rest comes from the program's copies.
    public var liveReads = 0
    /// Seconds since the recording started.
    public var elapsed = 0.0

    /// Samples per second achieved.
    public init() {}

    public var sampleRate: Double { elapsed > 0 ? Double(samples) / elapsed : 0 }
    public var roundRate: Double { elapsed > 0 ? Double(rounds) / elapsed : 0 }
}

/// Why a recording ended.
public enum SamplerStop: Sendable, Equatable {
    case requested
    case targetExited
    /// The target exec'd a program that is not Python (its executable path).
    case targetExecutedNonPython(executable: String)
}

/// Samples the Python stacks of a process (and optionally its children) at a fixed rate,
/// reading memory only: the target is never stopped. Stacks are interned into `frames`
/// and `stacks`; every sample is handed to the caller's `record` closure with what is known
/// of its thread's state.
public final class Sampler {
    public private(set) var frames = FrameTable()
    public private(set) var stacks = StackTable()
    public private(set) var statistics = SamplerStatistics()
    public let options: SamplerOptions
    public let rootPID: Int32
    private var processes: [Int32: ProcessSampler] = [:]
    private var order: [Int32] = []
    private var childAttempts: [Int32: Int] = [:]
    private var seenThreads = Set<SampledThread>()
    /// Processes that exec'd and are not yet re-attached: since when and when last tried
    /// (ns since start).
    private var execed: [Int32: (since: UInt64, tried: UInt64?)] = [:]
    /// The root process exec'd this executable, which is not Python.
    private var rootImageNotPython: String?
    /// How long a new image may stay unreadable as Python before it is given up: the
    /// dynamic loader maps libpython within milliseconds, the interpreter starts within seconds.
    static let execNotPythonGrace: UInt64 = 1_000_000_000
    static let execStartupGrace: UInt64 = 30_000_000_000
    /// Attaching reads the new image's object files: tried at most this often.
    static let execRetryInterval: UInt64 = 20_000_000
    /// How late the loop may fall (rounds, or nanoseconds at high rates) before it drops
    /// rounds instead of catching up.
    static let catchUpRounds = 10
    static let catchUpWindow: UInt64 = 20_000_000

    public init(target: PythonTarget, options: SamplerOptions) throws {
        self.options = options
        self.rootPID = target.pid
        try add(target)
    }

    /// Python version of the first process.
    public var pythonVersion: String? { order.first.flatMap { processes[$0]?.target.version.description } }

    private func add(_ target: PythonTarget) throws {
        processes[target.pid] = try makeProcessSampler(target)
        order.append(target.pid)
        statistics.processes = processes.count
    }

    private func makeProcessSampler(_ target: PythonTarget) throws -> ProcessSampler {
        var root: UInt32?
        if options.followChildren {
            let command = target.source.commandLine().joined(separator: " ")
            root = frames.id(for: .marker("process \(target.pid) (\(command.prefix(120)))"))
        }
        return try ProcessSampler(target: target, rootFrame: root, asyncTasks: options.asyncTasks)
    }

    /// Samples until `shouldStop` says so or every target has exited. `record` gets each
    /// sample: its thread, its interned stack id, the time since start (ns) and its state. `progress`
    /// is called about four times a second.
    @discardableResult
    public func run(shouldStop: (SamplerStatistics) -> Bool,
                    record: (SampledThread, UInt32, UInt64, SampleState) -> Void,
                    progress: (SamplerStatistics) -> Void = { _ in }) -> SamplerStop {
        let interval = UInt64(1_000_000_000 / max(1, min(options.rate, 1_000_000)))
        MonotonicClock.setTimerSlack(nanoseconds: 1_000)
        let start = MonotonicClock.now()
        let stopAt = options.stopAfter.map { start + UInt64((min(max($0, 0), 1e9) * 1e9).rounded(.up)) }
        var next = start
        var lastProgress = start
        var lastChildScan = start
        var lastRevalidate = start
        var lastImageCheck = start
        while true {
            let now = MonotonicClock.now()
            statistics.elapsed = Double(now - start) / 1e9
            if shouldStop(statistics) { return .requested }
            if let stopAt, now >= stopAt { return .requested }
            // Late by a few intervals (a busy machine): catch up with back-to-back rounds so no
            // sample is lost. Later than that, give those rounds up and count them as missed.
            if now > next + max(UInt64(Sampler.catchUpRounds) * interval, Sampler.catchUpWindow) {
                statistics.missedRounds += Int((now - next) / interval)
                next = now
            }
            let time = now - start
            for pid in order where execed[pid] == nil {
                guard let process = processes[pid], process.alive else { continue }
                process.sample(sampler: self, time: time, record: record)
            }
            statistics.rounds += 1
            let checkImages = now - lastImageCheck >= 250_000_000
            if checkImages { lastImageCheck = now }
            followExecs(time: time, checkAll: checkImages)
            if !processes.values.contains(where: \.alive) {
                if !options.followChildren || !scanChildren() {
                    return rootImageNotPython.map { .targetExecutedNonPython(executable: $0) } ?? .targetExited
                }
            }
            let after = MonotonicClock.now()
            if after - lastProgress >= 250_000_000 {
                lastProgress = after
                statistics.elapsed = Double(after - start) / 1e9
                progress(statistics)
            }
            if options.followChildren && after - lastChildScan >= 500_000_000 {
                lastChildScan = after
                scanChildren()
            }
            if after - lastRevalidate >= 2_000_000_000 {
                lastRevalidate = after
                for process in processes.values where process.alive { process.revalidate() }
            }
            next += interval
            let wake = min(next, stopAt ?? next)
            if wake > after { MonotonicClock.sleep(until: wake) }
        }
    }

    /// Notices processes that exec'd (checked after a failed read, and every 250 ms) and
    /// re-attaches to the new image once it is an initialized Python; a new image that is
    /// not Python ends that process's sampling.
    private func followExecs(time: UInt64, checkAll: Bool) {
        for pid in order where execed[pid] == nil {
            guard let process = processes[pid], process.alive, checkAll || process.failedSinceImageCheck else { continue }
            if process.imageChanged() { execed[pid] = (time, nil) }
        }
        for (pid, attempt) in execed {
            guard let old = processes[pid] else { continue }
            if let tried = attempt.tried, time - tried < Sampler.execRetryInterval { continue }
            execed[pid]?.tried = time
            let since = attempt.since
            do {
                let target = try PythonTarget(pid: pid)
                processes[pid] = try makeProcessSampler(target)
                execed[pid] = nil
                statistics.execs += 1
            } catch AttachError.notInitialized where time - since < Sampler.execStartupGrace {
                continue
            } catch let error as AttachError where time - since < Sampler.execNotPythonGrace && !error.isFinal {
                continue
            } catch {
                execed[pid] = nil
                old.markGone()
                if pid == rootPID, old.target.source.isAlive {
                    rootImageNotPython = old.target.source.executablePath() ?? "?"
                }
            }
        }
    }

    /// Starts sampling descendants of the root that became Python; true if any is alive.
    @discardableResult
    private func scanChildren() -> Bool {
        for child in LinuxProcess.descendants(of: rootPID) where processes[child] == nil {
            guard childAttempts[child, default: 0] < 20 else { continue }
            childAttempts[child, default: 0] += 1
            if let target = try? PythonTarget.attachRunning(pid: child), (try? add(target)) != nil {
                childAttempts[child] = nil
            }
        }
        return processes.values.contains(where: \.alive)
    }


    // MARK: Called by ProcessSampler

    func intern(_ frame: Frame) -> UInt32 { frames.id(for: frame) }
    func intern(stack: [UInt32]) -> UInt32 { stacks.id(for: stack) }

    func noteThread(_ thread: SampledThread) {
        if seenThreads.insert(thread).inserted { statistics.threads = seenThreads.count }
    }

    func count(_ update: (inout SamplerStatistics) -> Void) { update(&statistics) }

    /// A sample or thread list lost to an unreadable or inconsistent memory read.
    func countError(_ kind: String) {
        statistics.errors += 1
        statistics.errorKinds[kind, default: 0] += 1
    }
}

/// Per-process state of a recording: the reader, decoded frames
/// by (code, instruction) and what is known of each thread.
final class ProcessSampler {
    let target: PythonTarget
    let reader: PythonReader
    let rootFrame: UInt32?
    private var frameIDs: [RawFrame: UInt32] = [:]
    private var threads: [UInt64: ThreadInfo] = [:]
    private var threadTable: ThreadTable?
    private var knownAddresses: [UInt64] = []
    /// The interpreters of `knownAddresses`' thread states.
    private var knownInterpreters: [UInt64] = []
    /// Where each known interpreter's GIL holder is read, in the thread list's batch.
    private var gilRanges: [(interpreter: UInt64, range: GILStateRange)] = []
    private var stackBuffer: [UInt32] = []
    private var nextNameRefresh: UInt64 = 0
    private(set) var alive = true
    /// The image attached to, to notice an exec.
    private let image: ProcessImage?
    /// A read failed since the image was last checked.
    private(set) var failedSinceImageCheck = false
    /// Some thread has no name or OS thread yet (the threading module names a thread after
    /// it starts; a starting thread's state carries its creator's ids): threads are then
    /// re-read a few times a second.
    private var threadsPending = false
    /// With `--async`: continues stacks through the tasks awaiting the running one.
    private var asyncStacks: AsyncStackTracker?
    /// The interned hops of each idle task, for one generation of the task graph.
    private var idleTaskFrames: [UInt64: [UInt32]] = [:]
    private var idleTaskFramesGeneration: Int?

    struct ThreadInfo {
        var view: ThreadView
        var thread: SampledThread
        var rootFrame: UInt32?
        /// "interpreter N" with --threads when the process has several interpreters.
        var interpreterFrame: UInt32?
    }

    init(target: PythonTarget, rootFrame: UInt32?, asyncTasks: Bool = false) throws {
        self.target = target
        self.reader = try PythonReader(target: target)
        self.rootFrame = rootFrame
        if asyncTasks {
            asyncStacks = AsyncStackTracker(asyncio: AsyncioReader(reader: reader, layout: try AsyncioReader.layout(of: target)))
        }
        self.image = target.process?.attachedImage
        // At most about 11 ms of retries (a stack torn through 8 walks, 3 ms, still lost
        // 0.5% of the CPython test suite's samples in CI); the rounds a torn stack delays are caught up
        // (see Sampler.run).
        reader.retryWithBackoff(times: 12)
    }

    var pid: Int32 { target.pid }

    func sample(sampler: Sampler, time: UInt64, record: (SampledThread, UInt32, UInt64, SampleState) -> Void) {
        // The collector states are read before the thread states are copied (see
        // GCCollectors), in the same system call.
        let observed = sampler.options.gcFrames ? knownInterpreters : []
        let gcRanges = observed.map { reader.gcStateRange(interpreter: $0) }
        let states: [ThreadState]
        var gcStates = [UInt64: GCActivity]()
        var gilHolders = [UInt64: UInt64?]()
        do {
            let read = try reader.allThreadStates(readingFirst: gcRanges.compactMap { $0 } + gilRanges.map { ($0.range.address, $0.range.count) })
            states = read.states
            var results = read.first.makeIterator()
            for (interpreter, range) in zip(observed, gcRanges) where range != nil {
                if case .success(let bytes)? = results.next(), let activity = reader.gcActivity(fromStateBytes: bytes) {
                    gcStates[interpreter] = activity
                }
            }
            for (interpreter, range) in gilRanges {
                if case .success(let bytes)? = results.next() { gilHolders[interpreter] = .some(range.holder(fromBytes: bytes)) }
            }
        } catch {
            noteFailure(error, sampler: sampler, kind: "thread list unreadable")
            return
        }
        var collectors = GCCollectors(reader: reader, states: gcStates)
        if !states.elementsEqual(knownAddresses, by: { $0.address == $1 }) || (threadsPending && time >= nextNameRefresh) {
            refreshThreads(states, sampler: sampler)
            nextNameRefresh = time + 200_000_000
        }
        var gil = GILHolders(reader: reader, known: gilHolders)
        for state in states {
            guard let info = threads[state.address], info.view.isCurrent else { continue }
            var known = SampleState()
            // A thread whose OS thread is unknown is never taken for running. The run state
            // costs a /proc read (~3.5 µs): taken only when it is used, and not for the GIL
            // holder, which runs Python code (CPython releases the GIL around every blocking
            // call; an extension blocking with it held counts as running).
            let needsRunState = !sampler.options.includeIdle || sampler.options.recordsThreadStates
            let idle: Bool?
            if needsRunState, info.view.tid != nil, gilHolders[state.interpreter] == .some(state.address) {
                idle = false
            } else {
                idle = needsRunState ? info.view.idle(in: target.source) : nil
            }
            if !sampler.options.includeIdle {
                guard idle == false else { continue }
                known.insert(.onCPU)
            } else if sampler.options.recordsThreadStates, let idle {
                known.insert(idle ? .offCPU : .onCPU)
            }
            if sampler.options.onlyGIL || sampler.options.recordsThreadStates {
                let holds = gil.holds(state)
                if sampler.options.onlyGIL && !holds { continue }
                known.insert(holds ? .holdsGIL : .withoutGIL)
            }
            if sampler.options.onlyExceptions && !reader.isInException(state) { continue }
            let raw: RawStack
            do {
                raw = try reader.rawStack(of: state)
            } catch {
                noteFailure(error, sampler: sampler, kind: "thread state unreadable")
                continue
            }
            sampler.count { $0.retries += raw.retries }
            forgetFramesOfDroppedCode()
            if let defect = raw.defect {
                if case .changedWhileReading = defect { sampler.count { $0.torn += 1 } } else { sampler.countError(defect.kind) }
                continue
            }
            if raw.frames.isEmpty { continue }
            // In it when the walk's own copy was made (retries read the thread state again:
            // the first check may be of an earlier handler) and still after the walk, with
            // the walked innermost frame still there.
            if sampler.options.onlyExceptions {
                if raw.retries > 0, let copy = raw.threadState, !reader.isInException(copy) { continue }
                if !reader.isInExceptionNow(state, stillRunning: raw) { continue }
            }
            beginStack(info)
            if let cut = raw.cut { stackBuffer.append(sampler.intern(cut.marker)) }
            var complete = true
            if let asyncStacks, let hops = asyncStacks.hops(of: raw, thread: state, time: time) {
                complete = appendTaskHops(hops, sampler: sampler)
            } else {
                for rawFrame in raw.frames.reversed() {
                    guard let id = frameID(rawFrame, sampler: sampler) else { complete = false; break }
                    stackBuffer.append(id)
                }
            }
            guard complete else {
                sampler.countError("code object unreadable")
                continue
            }
            if sampler.options.gcFrames, collectors.isCollecting(state, frameAddresses: raw.frameAddresses, gil: &gil) {
                stackBuffer.append(sampler.intern(.garbageCollection))
            }
            let stack = sampler.intern(stack: stackBuffer)
            sampler.noteThread(info.thread)
            sampler.count { $0.samples += 1 }
            record(info.thread, stack, time, known)
        }
        if let asyncStacks, sampler.options.includeIdle, !sampler.options.onlyGIL, !sampler.options.onlyExceptions {
            recordIdleTasks(asyncStacks.idleTasks(time: time), states: states, sampler: sampler, time: time, record: record)
        }
    }

    /// Empties the stack buffer and puts in the frames every stack of the thread starts on.
    private func beginStack(_ info: ThreadInfo) {
        stackBuffer.removeAll(keepingCapacity: true)
        if let rootFrame { stackBuffer.append(rootFrame) }
        if let interpreterRoot = info.interpreterFrame { stackBuffer.append(interpreterRoot) }
        if let threadRoot = info.rootFrame { stackBuffer.append(threadRoot) }
    }

    /// Appends each task hop, outermost first: its `task NAME` marker, then its frames.
    /// False when a frame's code object cannot be read.
    private func appendTaskHops(_ hops: [AsyncStackTracker.Hop], sampler: Sampler) -> Bool {
        for hop in hops.reversed() {
            stackBuffer.append(sampler.intern(.marker("task \(hop.taskName)")))
            for rawFrame in hop.frames.reversed() {
                guard let id = frameID(rawFrame, sampler: sampler) else { return false }
                stackBuffer.append(id)
            }
        }
        return true
    }

    /// `--async --idle`: one off-CPU sample per idle task, on the thread running its loop.
    private func recordIdleTasks(_ tasks: [AsyncStackTracker.IdleTask], states: [ThreadState], sampler: Sampler, time: UInt64,
                                 record: (SampledThread, UInt32, UInt64, SampleState) -> Void) {
        guard !tasks.isEmpty else { return }
        if idleTaskFramesGeneration != asyncStacks?.generation {
            idleTaskFrames.removeAll(keepingCapacity: true)
            idleTaskFramesGeneration = asyncStacks?.generation
        }
        var threadsByIdent = [UInt64: ThreadInfo]()
        for state in states {
            if let info = threads[state.address], info.view.isCurrent { threadsByIdent[state.ident] = info }
        }
        for task in tasks {
            guard let info = threadsByIdent[task.threadIdent] else { continue }
            beginStack(info)
            if let frames = idleTaskFrames[task.task] {
                stackBuffer.append(contentsOf: frames)
            } else {
                let start = stackBuffer.count
                guard appendTaskHops(task.hops, sampler: sampler) else {
                    sampler.countError("code object unreadable")
                    continue
                }
                idleTaskFrames[task.task] = Array(stackBuffer[start...])
            }
            sampler.count { $0.samples += 1 }
            record(info.thread, sampler.intern(stack: stackBuffer), time, .offCPU)
        }
    }

    /// The interned frame of a raw frame, nil when its code object cannot be read.
    private func frameID(_ rawFrame: RawFrame, sampler: Sampler) -> UInt32? {
        if let id = frameIDs[rawFrame] { return id }
        guard let location = try? reader.location(of: rawFrame) else { return nil }
        var frame = Frame(python: location)
        if sampler.options.byFunction { frame = frame.atFunctionLevel }
        let id = sampler.intern(frame)
        frameIDs[rawFrame] = id
        return id
    }

    /// A failed read: the process exited, or its memory was inconsistent for a moment.
    /// An exiting process has no memory left before it is a zombie: that is its end too.
    private func noteFailure(_ error: any Error, sampler: Sampler, kind: String) {
        failedSinceImageCheck = true
        if memoryReadError(in: error) == .processGone || !target.source.isAlive {
            alive = false
        } else {
            sampler.countError(kind)
        }
    }

    private func refreshThreads(_ states: [ThreadState], sampler: Sampler) {
        knownAddresses = states.map(\.address)
        knownInterpreters = Array(Set(states.map(\.interpreter)))
        let usesGIL = !sampler.options.includeIdle || sampler.options.recordsThreadStates || sampler.options.onlyGIL
        gilRanges = usesGIL ? knownInterpreters.compactMap { interpreter in
            reader.gilStateRange(interpreter: interpreter).map { (interpreter, $0) }
        } : []
        let table = (try? target.source.threadTable(previous: threadTable)) ?? ThreadTable(hostTIDs: [])
        threadTable = table
        let views = reader.threadViews(of: states, in: table)
        let interpreters = Set(states.map(\.interpreter))
        var interpreterFrames = [UInt64: UInt32]()
        if sampler.options.threadRoots && interpreters.count > 1 {
            for interpreter in interpreters {
                let id = reader.interpreterID(interpreter).map(String.init) ?? "?"
                interpreterFrames[interpreter] = sampler.intern(.marker("interpreter \(id)"))
            }
        }
        var fresh = [UInt64: ThreadInfo]()
        for view in views {
            let state = view.state
            let thread = SampledThread(pid: pid, tid: view.tid, ident: state.ident, name: view.name)
            let interpreterFrame = interpreterFrames[state.interpreter]
            if let known = threads[state.address], known.thread == thread, known.thread.name == thread.name, known.view.isCurrent == view.isCurrent,
               known.interpreterFrame == interpreterFrame {
                fresh[state.address] = known
                continue
            }
            var root: UInt32?
            if sampler.options.threadRoots {
                root = sampler.intern(.marker("thread \(thread.label)"))
            }
            fresh[state.address] = ThreadInfo(view: view, thread: thread, rootFrame: root, interpreterFrame: interpreterFrame)
        }
        threads = fresh
        threadsPending = fresh.values.contains { $0.view.isCurrent && ($0.thread.name == nil || $0.thread.tid == nil) }
        target.source.retainThreads(Set(fresh.values.compactMap(\.thread.tid)))
    }

    /// Whether the process runs another image than the one attached to (it exec'd).
    func imageChanged() -> Bool {
        failedSinceImageCheck = false
        guard let image, let now = try? target.process?.image() else { return false }
        return now != image
    }

    func markGone() { alive = false }

    /// Re-checks cached code objects; decoded frames of any that moved are dropped.
    func revalidate() {
        reader.codes.revalidate()
        forgetFramesOfDroppedCode()
    }

    /// Decoded frames of code objects the cache dropped (their address now holds another).
    private func forgetFramesOfDroppedCode() {
        let dropped = reader.codes.takeDropped()
        if dropped.isEmpty { return }
        let codes = Set(dropped)
        frameIDs = frameIDs.filter { !codes.contains($0.key.code) }
    }
}
