/// What a recording of native stacks shows besides Python frames.
public struct NativeSamplingOptions: Sendable, Equatable {
    /// Every native frame (`--native-all`) rather than the frames worth reading (`--native`).
    public var allNativeFrames = false
    /// Kernel frames (`_[k]`) on top of the user stack (`--kernel`; on with `--native-all`).
    public var kernelFrames = false

    public init(allNativeFrames: Bool = false, kernelFrames: Bool = false) {
        self.allNativeFrames = allNativeFrames
        self.kernelFrames = kernelFrames
    }
}

/// What `Recording` runs: the Python-only `Sampler` or the `NativeSampler`.
public protocol StackSampler: AnyObject {
    var frames: FrameTable { get }
    var stacks: StackTable { get }
    var statistics: SamplerStatistics { get }
    var pythonVersion: String? { get }
    func run(shouldStop: (SamplerStatistics) -> Bool,
             record: (SampledThread, UInt32, UInt64, SampleState) -> Void,
             progress: (SamplerStatistics) -> Void) -> SamplerStop
}

extension Sampler: StackSampler {}

/// Samples native, Python and kernel stacks together without stopping the target: the BPF
/// program copies, at each tick of a thread's task clock, its registers, the top of its
/// stack, its kernel stack and its Python frames; this unwinds the copy (CFI, falling back
/// to live memory past the copied top), reads the Python frames from the copies with the
/// same reader that reads live memory, and merges. Only the root process is sampled. The
/// task clock ticks only for a thread on a CPU; with `includeIdle` a second program on the
/// scheduler's switch keeps each thread's copy from when it last went off the CPU, and every
/// wall-clock round counts each sleeping thread once with that stack (unwound once per copy).
public final class NativeSampler: StackSampler {
    private var book: NativeSampleBook
    public var frames: FrameTable { book.frames }
    public var stacks: StackTable { book.stacks }
    public var statistics: SamplerStatistics {
        var statistics = book.statistics
        statistics.liveReads = capturedMemory.liveReads
        return statistics
    }
    public let options: SamplerOptions
    public let native: NativeSamplingOptions
    public let target: PythonTarget
    private let program: BPFSampleProgram
    /// Reads live memory: the thread list.
    private let liveReader: PythonReader
    /// Reads a sample's copies (falling back to live memory for code objects).
    private let capturedMemory: CapturedMemory
    private let capturedReader: PythonReader
    private let objects: ProcessObjects
    private let kernelSymbols: KernelSymbols?
    private let unwinder = NativeUnwinder(maximumFrames: 512)
    private let frameBytes: Int
    /// Bytes the program copies of each frame's code object (0: none).
    private let codeHeadBytes: Int
    private var threads: [Int32: (state: ThreadState, thread: SampledThread, root: UInt32?)] = [:]
    private var threadTable: ThreadTable?
    private var symbolizedFrames: [UInt64: SymbolizedFrame] = [:]
    private var kernelFrames: [UInt64: Frame] = [:]
    private let mergeRules: NativeMergeRules
    private let mergePolicy: NativeMergePolicy
    /// Samples whose native unwind reached the thread's first frame.
    public private(set) var completeNativeStacks = 0
    /// Where each thread's stack ends, handed to the program so it copies no more stack.
    private var stackEnds = StackEnds()
    /// With `includeIdle`: per sleeping thread, the stack of its last off-CPU copy (by the
    /// copy's sequence count, so an unchanged copy is not read or unwound again).
    private var offCPUStacks: [Int32: (sequence: Int64, stack: UInt32)] = [:]
    /// A sleeping thread that has not gone off the CPU since sampling began has no copy.
    static let noOffCPUCopyMarker = Frame.marker("(asleep since sampling began: no native stack)")

    /// Loads and configures the BPF program. Throws `NativeCaptureUnavailable` when the
    /// kernel does not allow it.
    public init(target: PythonTarget, options: SamplerOptions, native: NativeSamplingOptions) throws {
        guard let live = target.process?.memory else { throw NativeCaptureUnavailable("native sampling needs a live process") }
        self.target = target
        self.options = options
        self.native = native
        book = NativeSampleBook(byFunction: options.byFunction)
        liveReader = try PythonReader(target: target)
        // Off-CPU copies are preallocated in the kernel (~70 KiB each): room for twice the
        // threads there are now.
        let offCPUThreads = options.includeIdle ? min(4096, max(64, 2 * ((try? liveReader.allThreadStates().count) ?? 0))) : 0
        program = try BPFSampleProgram(frequency: options.rate, offCPUThreads: offCPUThreads)
        capturedMemory = CapturedMemory(live: live)
        capturedReader = try PythonReader(memory: capturedMemory, layout: target.layout, addresses: target.addresses)
        // A copy is one instant: walking it again cannot give another answer.
        capturedReader.maximumRetries = 0
        // Except when a cached code object is not the one the copy shows at its address:
        // the walk is repeated naming the frame by the copy's.
        capturedReader.retriesAfterReplacedCode = 1
        capturedReader.codes.liveMemory = capturedMemory.liveMemory
        let layout = capturedReader.stackCaptureLayout
        frameBytes = layout.frameBytes
        codeHeadBytes = layout.codeIdentity?.headBytes ?? 0
        try program.configure(layout)
        objects = ProcessObjects(target: target.source)
        objects.prepare()
        kernelSymbols = native.kernelFrames ? KernelSymbols.current() : nil
        mergeRules = NativeMergeRules(target: target)
        mergePolicy = native.allNativeFrames ? .nativeAll : .native
    }

    public var pythonVersion: String? { target.version.description }

    /// Samples lost in the kernel because pytap did not drain the ring buffer in time.
    public var lostSamples: UInt64 { program.lostSamples }

    @discardableResult
    public func run(shouldStop: (SamplerStatistics) -> Bool,
                    record: (SampledThread, UInt32, UInt64, SampleState) -> Void,
                    progress: (SamplerStatistics) -> Void) -> SamplerStop {
        let start = MonotonicClock.now()
        let stopAt = options.stopAfter.map { start + UInt64((min(max($0, 0), 1e9) * 1e9).rounded(.up)) }
        var lastThreadScan: UInt64 = 0
        var lastProgress = start
        // With `includeIdle`: the wall-clock rounds that count sleeping threads.
        let idleInterval = options.includeIdle ? UInt64(1_000_000_000 / max(1, options.rate)) : nil
        var nextIdleRound = start
        while true {
            let now = MonotonicClock.now()
            book.statistics.elapsed = Double(now - start) / 1e9
            if shouldStop(statistics) { return .requested }
            if let stopAt, now >= stopAt { return .requested }
            if !target.source.isAlive {
                drain(start: start, record: record)
                return .targetExited
            }
            if now - lastThreadScan >= 200_000_000 {
                lastThreadScan = now
                refreshThreads()
            }
            if let idleInterval, now >= nextIdleRound {
                sampleSleepingThreads(time: now - start, until: stopAt, record: record)
                nextIdleRound += idleInterval
                if nextIdleRound <= now {
                    book.statistics.missedRounds += Int((now - nextIdleRound) / idleInterval) + 1
                    nextIdleRound = now + idleInterval
                }
            }
            // Samples wait in the ring until read: every 5 ms, so a code object a sample
            // saw is still there to be named when it is read (one freed meanwhile makes
            // the sample a torn one, counted).
            var wakeAt = stopAt.map { min($0, now + NativeSampler.pollInterval) } ?? now + NativeSampler.pollInterval
            if idleInterval != nil { wakeAt = min(wakeAt, nextIdleRound) }
            let timeout = Int32(clamping: max(1, (wakeAt - min(wakeAt, now)) / 1_000_000))
            // At most 100 ms of samples per poll, so the deadline, Ctrl-C and progress are seen
            // even when samples come faster than they are unwound; idle rounds keep their pace.
            var budgetEnd = min(now + 100_000_000, stopAt ?? .max)
            if idleInterval != nil { budgetEnd = min(budgetEnd, max(nextIdleRound, now + 1_000_000)) }
            program.poll(timeout: timeout) { sample in
                handle(sample, start: start, record: record)
                return MonotonicClock.now() < budgetEnd
            }
            book.statistics.lostSamples = Int(program.lostSamples)
            let after = MonotonicClock.now()
            if after - lastProgress >= 250_000_000 {
                lastProgress = after
                book.statistics.elapsed = Double(after - start) / 1e9
                progress(statistics)
            }
        }
    }

    private func drain(start: UInt64, record: (SampledThread, UInt32, UInt64, SampleState) -> Void) {
        let budgetEnd = MonotonicClock.now() + 200_000_000
        program.poll(timeout: 0) { sample in
            handle(sample, start: start, record: record)
            return MonotonicClock.now() < budgetEnd
        }
        book.statistics.lostSamples = Int(program.lostSamples)
    }

    /// Attaches to new threads, detaches from gone ones, and keeps the program's map of
    /// thread states current.
    private func refreshThreads() {
        guard let states = try? liveReader.allThreadStates() else { return }
        let table = (try? target.source.threadTable(previous: threadTable)) ?? ThreadTable(hostTIDs: [])
        threadTable = table
        var fresh: [Int32: (state: ThreadState, thread: SampledThread, root: UInt32?)] = [:]
        for view in liveReader.threadViews(of: states, in: table) where view.isCurrent {
            guard let tid = view.tid else { continue }
            let thread = SampledThread(pid: target.pid, tid: tid, ident: view.state.ident, name: view.name)
            var root = threads[tid]?.root
            if options.threadRoots, threads[tid]?.thread != thread {
                root = book.frames.id(for: .marker("thread \(thread.label)"))
            }
            fresh[tid] = (view.state, thread, root)
        }
        for tid in program.attachedThreads where fresh[tid] == nil {
            program.detach(tid: tid)
            program.setThreadState(tid: tid, address: nil)
        }
        // A thread gone (its tid may come back with another stack) or running another
        // thread state: its stack end is learned again.
        for tid in stackEnds.ends.keys where fresh[tid] == nil || fresh[tid]?.state.address != threads[tid]?.state.address {
            if stackEnds.forget(tid: tid) { program.setStackEnd(tid: tid, address: nil) }
        }
        for tid in threads.keys where fresh[tid] == nil {
            program.forgetOffCPU(tid: tid)
            offCPUStacks[tid] = nil
        }
        for (tid, entry) in fresh {
            if threads[tid]?.state.address != entry.state.address {
                program.setThreadState(tid: tid, address: entry.state.address)
                offCPUStacks[tid] = nil
            }
            if threads[tid] == nil { program.trackOffCPU(tid: tid) }
            do {
                try program.attach(tid: tid)
            } catch {
                book.statistics.errors += 1
                book.statistics.errorKinds["thread not attached", default: 0] += 1
            }
        }
        threads = fresh
    }

    private func handle(_ sample: CapturedSample, start: UInt64, record: (SampledThread, UInt32, UInt64, SampleState) -> Void) {
        book.statistics.rounds += 1
        book.statistics.stackCopies += 1
        book.statistics.stackBytesCopied += sample.userStackBytes
        guard let entry = threads[sample.tid], let id = stackID(of: sample, entry: entry) else { return }
        book.countSample(of: entry.thread)
        record(entry.thread, id, sample.time > start ? sample.time - start : 0, .onCPU)
    }

    /// One wall-clock round: each sleeping thread counted once with its last off-CPU stack
    /// (threads on a CPU are counted by their task clock).
    private func sampleSleepingThreads(time: UInt64, until stopAt: UInt64?, record: (SampledThread, UInt32, UInt64, SampleState) -> Void) {
        book.statistics.rounds += 1
        for (tid, entry) in threads where target.source.runState(tid: tid) == .idle {
            // A first unwind can be slow (a large compile unit read for its lines): the
            // deadline still holds.
            if let stopAt, MonotonicClock.now() >= stopAt { return }
            guard let id = offCPUStack(tid: tid, entry: entry) else { continue }
            book.countSample(of: entry.thread)
            record(entry.thread, id, time, .offCPU)
        }
    }

    /// The stack of thread `tid`'s last off-CPU copy, unwound once per copy; a thread with no
    /// copy yet gets its Python frames read live under `noOffCPUCopyMarker`.
    private func offCPUStack(tid: Int32, entry: (state: ThreadState, thread: SampledThread, root: UInt32?)) -> UInt32? {
        guard let sequence = program.offCPUSequence(tid: tid) else { return nil }
        if let known = offCPUStacks[tid], known.sequence == sequence || sequence & 1 == 1 { return known.stack }
        if sequence == 0 {
            guard let raw = try? liveReader.rawStack(of: liveReader.reread(entry.state)),
                  let python = book.pythonCalls(of: raw, reader: liveReader) else { return nil }
            let id = book.stackID(root: entry.root, frames: [NativeSampler.noOffCPUCopyMarker] + python.frames)
            offCPUStacks[tid] = (0, id)
            return id
        }
        guard let (read, id) = program.readOffCPU(tid: tid, { sample, read in (read, stackID(of: sample, entry: entry)) }),
              let id else { return offCPUStacks[tid]?.stack }
        offCPUStacks[tid] = (read, id)
        return id
    }


    /// The merged stack of one copy; nil when its Python part is unreadable or inconsistent.
    private func stackID(of sample: CapturedSample, entry: (state: ThreadState, thread: SampledThread, root: UInt32?)) -> UInt32? {
        capturedMemory.reset()
        if let stack = sample.userStack { capturedMemory.add(stack) }
        if let current = sample.currentFrameThroughCFrame { capturedMemory.add(current) }
        for frame in sample.pythonFrames(frameBytes: frameBytes) { capturedMemory.add(frame) }
        // The code objects' identities as the sample saw them: the cache's check after the
        // walk reads these, not the target (a read that would make the target's own
        // `brk`/`mmap` wait for its memory-map lock, once per sample).
        for copy in sample.codeIdentityCopies(codeHeadBytes: codeHeadBytes) { capturedMemory.addPartial(copy) }
        var python = PythonEvalCalls(frames: [], callEnds: [])
        if let copy = sample.threadState {
            capturedMemory.add(copy)
            let state = ThreadState(address: entry.state.address, interpreter: entry.state.interpreter, ident: entry.state.ident,
                                    nativeThreadID: entry.state.nativeThreadID, bytes: copy)
            guard let calls = pythonCalls(of: state) else { return nil }
            python = calls
        }
        let (native, complete) = nativeFrames(of: sample)
        let merged = NativeStackMerger.merge(native: native, nativeComplete: complete, python: python,
                                             rules: mergeRules, policy: mergePolicy)
        let kernel = kernelSymbols == nil ? [] : sample.kernelStack.compactMap(kernelFrame)
        return book.stackID(root: entry.root, frames: kernel + merged)
    }

    /// The Python frames of a copied thread state, innermost first, with the eval calls
    /// that run them; nil when the copy does not hold a consistent stack.
    private func pythonCalls(of state: ThreadState) -> PythonEvalCalls? {
        guard let raw = try? capturedReader.rawStack(of: state) else {
            book.countError("thread state unreadable")
            return nil
        }
        // Frames decoded from a code object the walk found replaced go with it.
        book.forgetPythonFrames(ofCodes: capturedReader.codes.takeDropped())
        return book.pythonCalls(of: raw, reader: capturedReader)
    }

    /// The native frames of a sample, innermost first, and whether the unwind reached the
    /// thread's first frame.
    private func nativeFrames(of sample: CapturedSample) -> ([SymbolizedFrame], Bool) {
        var registers = UnwindRegisters(architecture: unwinder.architecture)
        for (dwarf, ptRegs) in NativeSampler.x86_64PtRegsSlots.enumerated() { registers[dwarf] = sample.register(ptRegs) }
        let result = unwinder.unwind(registers: registers, memory: capturedMemory) { [objects] in objects.unwindModule(at: $0) }
        let complete: Bool
        switch result.stop {
        case .outermostFrame, .zeroReturnAddress: complete = true
        default: complete = false
        }
        if complete {
            completeNativeStacks += 1
            if let end = result.stackEnd,
               let learned = stackEnds.learn(tid: sample.tid, stackPointer: sample.register(NativeSampler.x86_64PtRegsSlots[7]), end: end) {
                program.setStackEnd(tid: sample.tid, address: learned)
            }
        }
        return (result.frames.map(symbolized), complete)
    }

    /// Nanoseconds between reads of the ring buffer.
    static let pollInterval: UInt64 = 5_000_000

    /// x86_64: the `struct pt_regs` slot of each DWARF register 0–16 (rax, rdx, rcx, rbx,
    /// rsi, rdi, rbp, rsp, r8–r15, rip).
    static let x86_64PtRegsSlots = [10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0, 16]

    /// A native frame with its source line and inlined calls, named once per pc (a return
    /// address is looked up at its call instruction, so the cache key is the lookup address).
    private func symbolized(_ frame: UnwoundFrame) -> SymbolizedFrame {
        if let known = symbolizedFrames[frame.lookupAddress] { return known }
        var named = objects.symbolize(pc: frame.pc, lookupAddress: frame.lookupAddress)
        if options.byFunction { named.functions = named.functions.map { SourceFunction(name: $0.name, file: $0.file) } }
        symbolizedFrames[frame.lookupAddress] = named
        return named
    }

    /// A kernel frame by name; nil for the BPF and tracepoint plumbing that ran the program
    /// (on top of an off-CPU copy's kernel stack).
    private func kernelFrame(_ address: UInt64) -> Frame? {
        if let frame = kernelFrames[address] { return frame.name.isEmpty ? nil : frame }
        let name = kernelSymbols?.name(at: address) ?? "0x" + String(address, radix: 16)
        let plumbing = NativeSampler.tracingPlumbing.contains { name.hasPrefix($0) }
        let frame = Frame(kind: .kernel, name: plumbing ? "" : name)
        kernelFrames[address] = frame
        return plumbing ? nil : frame
    }

    /// Kernel functions that call a raw-tracepoint program, not the thread's own work.
    static let tracingPlumbing = ["bpf_trace_run", "__bpf_trace_", "__traceiter_", "bpf_prog_"]

}
