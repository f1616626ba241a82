import CBPF
import Glibc

/// What `py-callgraph` traces.
public struct PyCallGraphOptions: Sendable {
    /// The Python function (name or qualname) whose calls are traced.
    public var trigger: String
    public var count: Int = 1
    public var maxEvents: Int = 1_000_000

    public init(trigger: String) { self.trigger = trigger }
}

/// Why `py-callgraph` cannot trace a target.
public enum PyCallGraphError: Error, CustomStringConvertible {
    case unsupportedVersion(PythonVersion)
    case noEvalFunction(String, path: String)

    public var description: String {
        switch self {
        case .unsupportedVersion(let version):
            return "py-callgraph does not support Python \(version.major).\(version.minor) yet (2.7 and 3.6–3.10 only: there every Python call runs the eval function once)"
        case .noEvalFunction(let name, let path):
            return "no eval function \(name) to probe in \(path)"
        }
    }
}

/// `pytap py-callgraph` on 2.7–3.10: a uprobe on the eval function's entry reads the
/// frame's code object (bpf/pycallgraph.bpf.c), a uretprobe sees its return; every thread
/// is recorded and the calls inside the trigger's extent become call trees here (matched by
/// stack pointer, as `callgraph` does). Names are `qualname (file:line)`.
public final class PyCallGraphTracer {
    /// Per version (data): the eval function every Python call runs, and which argument
    /// holds the frame.
    static let evalFunctions: [(versions: ClosedRange<PythonMinorVersion>, symbol: String, frameArgument: Int)] = [
        (PythonMinorVersion(2, 7)...PythonMinorVersion(2, 7), "PyEval_EvalFrameEx", 1),
        (PythonMinorVersion(3, 6)...PythonMinorVersion(3, 8), "_PyEval_EvalFrameDefault", 1),
        (PythonMinorVersion(3, 9)...PythonMinorVersion(3, 10), "_PyEval_EvalFrameDefault", 2),
    ]

    public let target: PythonTarget
    public let options: PyCallGraphOptions
    private let bpf: BPFObject
    private let codes: CodeObjectCache
    private let evalSymbol: String
    private let frameArgument: Int
    private let path: String
    private let offset: UInt64
    private var names: [UInt64: (label: String, matches: Bool)] = [:]
    private var builders: [Int32: CallTreeBuilder] = [:]
    private var started = 0

    public init(target: PythonTarget, options: PyCallGraphOptions) throws {
        guard let live = target.source as? LiveProcessTarget, let object = target.runtimeObject else {
            throw NativeCaptureUnavailable("py-callgraph needs a live process")
        }
        let minor = PythonMinorVersion(target.version.major, target.version.minor)
        guard let eval = PyCallGraphTracer.evalFunctions.first(where: { $0.versions.contains(minor) }) else {
            throw PyCallGraphError.unsupportedVersion(target.version)
        }
        guard let symbol = object.symbol(named: eval.symbol), symbol.size > 0,
              let offset = object.elf.fileOffset(ofVirtualAddress: symbol.value) else {
            throw PyCallGraphError.noEvalFunction(eval.symbol, path: object.path)
        }
        self.target = target
        self.options = options
        evalSymbol = eval.symbol
        frameArgument = eval.frameArgument
        path = live.process.hostPath(forTargetPath: object.path)
        self.offset = offset
        codes = try CodeObjectCache(objects: ObjectReader(memory: target.memory, layout: target.layout), layout: target.layout)
        bpf = try BPFObject(name: "pycallgraph", hex: BPFPycallgraphProgramObject.hex)
        try bpf.skipProgram(frameArgument == 1 ? "on_eval_frame_arg2" : "on_eval_frame_arg1")
        try bpf.load()
        var state = pytap_pycallgraph_state()
        state.frame_code = UInt64(try target.layout.require(.frameCode))
        state.events_left = UInt64(max(0, options.maxEvents))
        try bpf.map("pystate").update(UInt32(0), state)
        try bpf.openRing("pyevents")
    }

    /// Probes the eval function (its return first, so no entry goes without its return).
    public func attach() throws -> String {
        try bpf.attachUprobe(program: "on_eval_return", pid: target.pid, path: path, offset: offset, returnProbe: true)
        try bpf.attachUprobe(program: frameArgument == 1 ? "on_eval_frame_arg1" : "on_eval_frame_arg2", pid: target.pid,
                             path: path, offset: offset)
        return evalSymbol
    }

    public func detach() { bpf.detachAll() }

    /// Like `CallGraphTracer.run`.
    public func run(shouldStop: () -> Bool, onInvocation: (CallInvocation) -> Void) throws -> CallGraphSummary {
        var summary = CallGraphSummary()
        defer { detach() }
        try CallGraphSummary.poll(bpf, recording: pytap_pycall_event.self, from: target, until: options.count, into: &summary,
                                  shouldStop: shouldStop, handle: handle, onInvocation: onInvocation)
        detach()
        for (_, var open) in builders.sorted(by: { $0.key < $1.key }) where summary.invocations < options.count {
            open.end()
            if let invocation = open.invocation { summary.invocations += 1; onInvocation(invocation) }
        }
        builders = [:]
        summary.dropped = (try? bpf.map("pystate"))?.lookup(UInt32(0), as: pytap_pycallgraph_state.self)?.dropped ?? 0
        return summary
    }

    private func handle(_ event: pytap_pycall_event) -> CallInvocation? {
        let tid = Int32(bitPattern: event.tid)
        if event.kind == UInt32(PYTAP_CALL_ENTRY.rawValue) {
            let name = describe(event.code)
            if var builder = builders[tid] {
                builder.enter(name: name.label, function: event.code, stack: event.stack, time: event.time_ns)
                builders[tid] = builder
            } else if name.matches && started < options.count {
                started += 1
                builders[tid] = CallTreeBuilder(number: started, tid: tid, threadName: threadName(tid), startTime: event.time_ns,
                                                root: name.label, function: event.code, stack: event.stack)
            }
            return nil
        }
        guard var builder = builders[tid] else { return nil }
        builder.leave(function: nil, stack: event.stack, time: event.time_ns)
        if builder.isFinished {
            builders[tid] = nil
            return builder.invocation
        }
        builders[tid] = builder
        return nil
    }

    /// `qualname (file:line)` of a code object, read once per address.
    private func describe(_ code: UInt64) -> (label: String, matches: Bool) {
        if let known = names[code] { return known }
        let described: (label: String, matches: Bool)
        if let object = try? codes.code(at: code) {
            described = ("\(object.qualname) (\(object.filename):\(object.firstLine))",
                         object.qualname == options.trigger || object.name == options.trigger)
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
