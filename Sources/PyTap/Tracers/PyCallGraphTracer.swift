import CBPF
import Glibc

/// What `py-callgraph` traces.
public struct PyCallGraphOptions: Sendable {
    /// The Python function (name or qualname) whose calls are traced; nil: every function,
    /// each outermost call seen on a thread being one block.
    public var trigger: String?
    /// With a trigger: its calls to trace. Without: calls (of any function) to record.
    public var count: Int?
    /// Stop after this many seconds.
    public var duration: Double?
    public var maxEvents: Int = 1_000_000

    public init(trigger: String?) { self.trigger = trigger }
}

/// Why `py-callgraph` cannot trace a target.
public enum PyCallGraphError: Error, CustomStringConvertible {
    case unsupportedVersion(PythonVersion)
    case noEvalFunction(String, path: String)
    case noOpcodeTable(path: String, why: String)

    public var description: String {
        switch self {
        case .unsupportedVersion(let version):
            return "py-callgraph does not support Python \(version.major).\(version.minor) (2.7 and 3.6–3.15 only)"
        case .noEvalFunction(let name, let path):
            return "no function \(name) to probe in \(path)"
        case .noOpcodeTable(let path, let why):
            return "cannot find the bytecode handlers of \(path): \(why)"
        }
    }
}

/// How the tracer learned where the probes went.
public struct PyCallGraphAttachment: Sendable {
    /// What is probed, for the user ("_PyEval_EvalFrameDefault", "12 bytecode handlers").
    public var probed: String
    public var seconds: Double
}

/// `pytap py-callgraph`: every Python call and return on every thread of a live target,
/// turned into call trees per thread here; with a trigger, only the trees under its calls.
/// 2.7–3.10: a uprobe on the eval function's entry reads the frame's code object
/// (bpf/pycallgraph.bpf.c), a uretprobe sees its return; calls and returns are matched by
/// stack pointer. 3.11+: the bytecode handlers that start and leave frames are probed
/// (bpf/pyopcodes.bpf.c, `OpcodeHandlers`) and each record's frame chain is matched to the
/// frames seen (`PythonFrameChain`). Names are `qualname (file:line)`.
public final class PyCallGraphTracer {
    /// Per version (data): the eval function every Python call runs, and which argument
    /// holds the frame (2.7–3.10; from 3.11 Python calls do not run it).
    static let evalFunctions: [(versions: ClosedRange<PythonMinorVersion>, symbol: String, frameArgument: Int)] = [
        (PythonMinorVersion(2, 7)...PythonMinorVersion(2, 7), "PyEval_EvalFrameEx", 1),
        (PythonMinorVersion(3, 6)...PythonMinorVersion(3, 8), "_PyEval_EvalFrameDefault", 1),
        (PythonMinorVersion(3, 9)...PythonMinorVersion(3, 10), "_PyEval_EvalFrameDefault", 2),
    ]

    private enum Probes {
        case evalFunction(symbol: String, frameArgument: Int, offset: UInt64)
        case handlers(OpcodeHandlers)
    }

    /// One thread's trace.
    private struct ThreadTrace {
        var chain = PythonFrameChain()
        var builder: CallTreeBuilder?
    }

    public let target: PythonTarget
    public let options: PyCallGraphOptions
    private let bpf: BPFObject
    private let probes: Probes
    private let codes: CodeObjectCache
    private let reader: PythonReader
    private let path: String
    private var threadStates: ThreadStateMap?
    private var names: [UInt64: (label: String, matches: Bool)] = [:]
    private var threads: [Int32: ThreadTrace] = [:]
    private var started = 0
    private var calls = 0

    public init(target: PythonTarget, options: PyCallGraphOptions) throws {
        guard let live = target.source as? LiveProcessTarget, let object = target.runtimeObject else {
            throw NativeCaptureUnavailable("py-callgraph needs a live process")
        }
        let minor = PythonMinorVersion(target.version.major, target.version.minor)
        self.target = target
        self.options = options
        path = live.process.hostPath(forTargetPath: object.path)
        reader = try PythonReader(target: target)
        codes = try CodeObjectCache(objects: ObjectReader(memory: target.memory, layout: target.layout), layout: target.layout)
        if let eval = PyCallGraphTracer.evalFunctions.first(where: { $0.versions.contains(minor) }) {
            guard let symbol = object.symbol(named: eval.symbol), symbol.size > 0,
                  let offset = object.elf.fileOffset(ofVirtualAddress: symbol.value) else {
                throw PyCallGraphError.noEvalFunction(eval.symbol, path: object.path)
            }
            probes = .evalFunction(symbol: eval.symbol, frameArgument: eval.frameArgument, offset: offset)
            bpf = try BPFObject(name: "pycallgraph", hex: BPFPycallgraphProgramObject.hex)
            try bpf.skipProgram(eval.frameArgument == 1 ? "on_eval_frame_arg2" : "on_eval_frame_arg1")
            try bpf.load()
            var state = pytap_pycallgraph_state()
            state.frame_code = UInt64(try target.layout.require(.frameCode))
            state.events_left = UInt64(max(0, options.maxEvents))
            try bpf.map("pystate").update(UInt32(0), state)
            try bpf.openRing("pyevents")
        } else {
            guard OpcodeHandlers.supports(minor) else { throw PyCallGraphError.unsupportedVersion(target.version) }
            let handlers = try OpcodeHandlers(target: target, object: object)
            guard let (stack, frameReadBytes) = reader.probedStackConfig else {
                throw PyCallGraphError.noOpcodeTable(path: object.path, why: "the layout of Python \(target.version) lacks a frame field")
            }
            probes = .handlers(handlers)
            bpf = try BPFObject(name: "pyopcodes", hex: BPFPyopcodesProgramObject.hex)
            try bpf.setAttachType(ofProgram: "on_handler_multi", to: UInt32(PYTAP_BPF_TRACE_UPROBE_MULTI))
            try bpf.load()
            var config = pytap_pyframes_config()
            config.thread_state_frame = stack.thread_state_frame
            config.thread_state_cframe = stack.thread_state_cframe
            config.cframe_current_frame = stack.cframe_current_frame
            config.frame_previous = stack.frame_previous
            config.frame_code = stack.frame_code
            config.frame_owner = stack.frame_owner
            config.first_non_python_owner = UInt32(target.layout[.firstNonPythonFrameOwner] ?? 256)
            config.frame_read_bytes = UInt32(frameReadBytes)
            config.events_left = UInt64(max(0, options.maxEvents))
            try bpf.map("pyconfig").update(UInt32(0), config)
            try bpf.openRing("pyframes")
            threadStates = ThreadStateMap(map: try bpf.map("thread_states"), reader: reader, target: target)
        }
    }

    /// Places the probes (return probes first, so no entry goes without its return).
    public func attach() throws -> PyCallGraphAttachment {
        let start = MonotonicClock.now()
        let probed: String
        switch probes {
        case .evalFunction(let symbol, let frameArgument, let offset):
            try bpf.attachUprobe(program: "on_eval_return", pid: target.pid, path: path, offset: offset, returnProbe: true)
            try bpf.attachUprobe(program: frameArgument == 1 ? "on_eval_frame_arg1" : "on_eval_frame_arg2", pid: target.pid,
                                 path: path, offset: offset)
            probed = symbol
        case .handlers(let handlers):
            threadStates?.refresh()
            let batch = UprobeBatch(probes: handlers.probes.map { (offset: $0.fileOffset, cookie: UInt64($0.kind.rawValue)) })
            let result = try bpf.attachUprobes(batch, path: path, pid: target.pid, multiEntry: "on_handler_multi", multiExit: nil,
                                               entry: "on_handler", exit: nil)
            if !result.refused.isEmpty {
                bpf.detachAll()
                throw NativeCaptureUnavailable("the kernel refused a uprobe on \(result.refused.count) of the bytecode handlers")
            }
            probed = "\(handlers.probes.count - 1) bytecode handlers and \(OpcodeHandlers.raiseFunction)"
        }
        return PyCallGraphAttachment(probed: probed, seconds: Double(MonotonicClock.now() - start) / 1e9)
    }

    public func detach() { bpf.detachAll() }

    /// Hands each call tree to `onInvocation` as it completes, until the count or the
    /// duration is reached, `shouldStop` says so or the target exits; then detaches and
    /// hands over the trees still open (truncated).
    public func run(shouldStop: () -> Bool, onInvocation: (CallInvocation) -> Void) throws -> CallGraphSummary {
        var summary = CallGraphSummary()
        defer { detach() }
        let start = MonotonicClock.now()
        let stopAt = options.duration.map { start + UInt64((min(max($0, 0), 1e6) * 1e9).rounded(.up)) }
        var lastRefresh = start
        let limit = options.count ?? (options.trigger == nil ? Int.max : 1)
        func done() -> Bool { options.trigger == nil ? calls >= limit : summary.invocations >= limit }
        // A thread started meanwhile is recorded once the thread map knows it: the map is
        // read every 100 ms, and at once (at most every 5 ms) when a probe asks for it.
        var refreshAsked = false
        func refreshThreads(at now: UInt64) {
            lastRefresh = now
            threadStates?.refresh()
            if refreshAsked, let map = try? bpf.map("refresh_asked") {
                refreshAsked = false
                try? map.update(UInt32(0), UInt32(0))
            }
        }
        func take(_ record: UnsafeRawBufferPointer) -> Bool {
            let completed: [CallInvocation]
            switch probes {
            case .evalFunction:
                guard record.count >= MemoryLayout<pytap_pycall_event>.size else { return true }
                completed = handle(record.loadUnaligned(as: pytap_pycall_event.self))
            case .handlers:
                guard record.count >= MemoryLayout<pytap_pyframe_event>.size else { return true }
                let event = record.loadUnaligned(as: pytap_pyframe_event.self)
                if event.kind == UInt32(PYTAP_PYFRAME_NEW_THREAD.rawValue) {
                    refreshAsked = true
                    let now = MonotonicClock.now()
                    if now - lastRefresh >= 5_000_000 { refreshThreads(at: now) }
                    return true
                }
                completed = handle(event)
            }
            summary.events += 1
            for invocation in completed where options.trigger == nil || summary.invocations < limit {
                summary.invocations += 1
                onInvocation(invocation)
            }
            return !done()
        }
        while !done() {
            if shouldStop() { break }
            let now = MonotonicClock.now()
            if let stopAt, now >= stopAt { break }
            if !(target.process?.isAlive ?? true) { summary.targetExited = true; break }
            if now - lastRefresh >= (refreshAsked ? 5_000_000 : 100_000_000) { refreshThreads(at: now) }
            let interval = UInt64(BPFObject.quietRingInterval)
            let timeout = stopAt.map { Int32(clamping: min(interval, ($0 - min($0, now)) / 1_000_000 + 1)) } ?? Int32(interval)
            _ = try bpf.poll(timeout: timeout, take)
        }
        detach()
        // The records sent before the probes came off (the ring is read on a timer).
        if !done() { _ = try bpf.poll(timeout: 0, take) }
        for (tid, var trace) in threads.sorted(by: { $0.key < $1.key }) {
            guard var open = trace.builder, options.trigger == nil || summary.invocations < limit else { continue }
            open.end()
            trace.builder = nil
            threads[tid] = trace
            if let invocation = open.invocation { summary.invocations += 1; onInvocation(invocation) }
        }
        threads = [:]
        switch probes {
        case .evalFunction:
            summary.dropped = (try? bpf.map("pystate"))?.lookup(UInt32(0), as: pytap_pycallgraph_state.self)?.dropped ?? 0
        case .handlers:
            summary.dropped = (try? bpf.map("pyconfig"))?.lookup(UInt32(0), as: pytap_pyframes_config.self)?.dropped ?? 0
        }
        return summary
    }

    // MARK: Records to call trees

    /// 2.7–3.10: an entry or return of the eval function, matched by stack pointer.
    private func handle(_ event: pytap_pycall_event) -> [CallInvocation] {
        let tid = Int32(bitPattern: event.tid)
        if event.kind == UInt32(PYTAP_CALL_ENTRY.rawValue) {
            enter(tid: tid, code: event.code, stack: event.stack, time: event.time_ns, recorded: true)
            return []
        }
        return leave(tid: tid, stack: event.stack, time: event.time_ns)
    }

    /// 3.11+: a handler hit, matched to the thread's frames; the depth in the chain stands
    /// for the stack pointer (deeper: lower, as on a real stack).
    private func handle(_ event: pytap_pyframe_event) -> [CallInvocation] {
        let tid = Int32(bitPattern: event.tid)
        let count = min(Int(event.count), Int(PYTAP_PYFRAME_CHAIN))
        let tag = target.layout.traits.codeReferenceTagBits
        let chain = withUnsafeBytes(of: (event.frames, event.codes)) { raw -> [PythonFrameChain.Entry] in
            let words = raw.bindMemory(to: UInt64.self)
            let width = Int(PYTAP_PYFRAME_CHAIN)
            return (0..<count).map { PythonFrameChain.Entry(frame: words[$0], code: words[width + $0] & ~tag) }
        }
        let kind: PythonFrameChain.Event
        switch event.kind {
        case UInt32(PYTAP_PYFRAME_START.rawValue): kind = .start
        case UInt32(PYTAP_PYFRAME_LEAVE.rawValue): kind = .leave
        default: kind = .raise
        }
        let steps = threads[tid, default: ThreadTrace()].chain.apply(kind, chain: chain)
        var completed = [CallInvocation]()
        for step in steps {
            switch step {
            case .enter(let entry, let depth, let recorded):
                enter(tid: tid, code: entry.code, stack: PyCallGraphTracer.stack(depth), time: event.time_ns, recorded: recorded)
            case .leave(_, let depth):
                completed += leave(tid: tid, stack: PyCallGraphTracer.stack(depth), time: event.time_ns)
            }
        }
        return completed
    }

    private static func stack(_ depth: Int) -> UInt64 { UInt64.max - UInt64(depth) }

    /// A call: into the thread's open tree, or the root of a new one (a recorded call of
    /// the trigger; without a trigger, any call while none is open).
    private func enter(tid: Int32, code: UInt64, stack: UInt64, time: UInt64, recorded: Bool) {
        let name = describe(code)
        if recorded { calls += 1 }
        // Changed in place: a copy taken out of `threads` would copy the tree on every
        // record (copy-on-write of arrays still shared with the dictionary's value).
        if threads[tid]?.builder != nil {
            threads[tid]?.builder?.enter(name: name.label, function: code, stack: stack, time: time)
            return
        }
        let startsTree: Bool
        if options.trigger == nil {
            startsTree = calls <= (options.count ?? Int.max)
        } else {
            startsTree = recorded && name.matches && started < (options.count ?? 1)
        }
        guard startsTree else { return }
        started += 1
        threads[tid, default: ThreadTrace()].builder = CallTreeBuilder(number: started, tid: tid, threadName: threadName(tid), startTime: time,
                                        root: name.label, function: code, stack: stack)
    }

    private func leave(tid: Int32, stack: UInt64, time: UInt64) -> [CallInvocation] {
        guard threads[tid]?.builder != nil else { return [] }
        threads[tid]?.builder?.leave(function: nil, stack: stack, time: time)
        guard let builder = threads[tid]?.builder, builder.isFinished else { return [] }
        threads[tid]?.builder = nil
        return builder.invocation.map { [$0] } ?? []
    }

    /// `qualname (file:line)` of a code object, read once per address.
    private func describe(_ code: UInt64) -> (label: String, matches: Bool) {
        if let known = names[code] { return known }
        let described: (label: String, matches: Bool)
        if let object = try? codes.code(at: code) {
            described = ("\(object.qualname) (\(object.filename):\(object.firstLine))",
                         options.trigger.map { object.qualname == $0 || object.name == $0 } ?? false)
        } else {
            described = ("<code 0x\(String(code, radix: 16))>", false)
        }
        names[code] = described
        return described
    }

    private func threadName(_ tid: Int32) -> String {
        let comm = (try? ProcFiles.readString("/proc/\(target.pid)/task/\(tid)/comm"))?.split(separator: "\n").first
        return comm.map(String.init) ?? target.source.name()
    }
}
