import CBPF
import Glibc

/// What `callgraph` traces.
public struct CallGraphOptions: Sendable {
    /// The C function whose calls are traced.
    public var trigger: String
    /// Trigger entries to trace before detaching.
    public var count: Int = 1
    /// The object file to probe (path or part of its file name); nil: the interpreter's.
    public var module: String?
    /// Only functions whose name matches this glob (the trigger is always probed).
    public var functions: String?
    /// Records the BPF program sends at most; the rest are counted as dropped.
    public var maxEvents: Int = 1_000_000

    public init(trigger: String) { self.trigger = trigger }
}

/// How the probes went on.
public struct CallGraphAttachment: Sendable {
    public var path: String
    public var functions: Int
    public var withReturn: Int
    /// Functions the kernel refused to probe, and those left out as unsafe (unsized,
    /// ifuncs, cold parts, functions that do not return to their caller).
    public var refused: Int
    public var skipped: Int
    public var multiLinks: Bool
    public var links: Int
    public var seconds: Double
}

/// What a trace saw.
public struct CallGraphSummary: Sendable {
    public var invocations = 0
    public var events = 0
    public var dropped: UInt64 = 0
    public var targetExited = false

    /// The tracers' loop: hands `bpf`'s records (`Record`s) to `handle` and the invocations
    /// it completes to `onInvocation`, until `count` are done, `shouldStop` says so, or the
    /// target exits; then detaches and reads the records sent before (the ring is read on a
    /// timer, so up to `BPFObject.quietRingInterval` of them are still waiting).
    static func poll<Record: BitwiseCopyable>(_ bpf: BPFObject, recording _: Record.Type, from target: PythonTarget, until count: Int,
                                               into summary: inout CallGraphSummary, shouldStop: () -> Bool,
                                               handle: (Record) -> CallInvocation?, onInvocation: (CallInvocation) -> Void) throws {
        func take(_ record: UnsafeRawBufferPointer) -> Bool {
            guard record.count >= MemoryLayout<Record>.size else { return true }
            summary.events += 1
            if let invocation = handle(record.loadUnaligned(as: Record.self)) {
                summary.invocations += 1
                onInvocation(invocation)
                return summary.invocations < count
            }
            return true
        }
        while summary.invocations < count {
            if shouldStop() { break }
            if !(target.process?.isAlive ?? true) { summary.targetExited = true; break }
            try bpf.poll(timeout: BPFObject.quietRingInterval, take)
        }
        bpf.detachAll()
        if summary.invocations < count { try bpf.poll(timeout: 0, take) }
    }
}

/// `pytap callgraph`: uprobes and uretprobes on every (or the matching) C function of one
/// object file of a live target, recorded by bpf/callgraph.bpf.c only on the thread inside
/// the trigger's extent, turned into call trees here. Probes live in this tracer's BPF
/// object: `detach` (or pytap's end, SIGKILL included) removes them all.
public final class CallGraphTracer {
    public let target: PythonTarget
    public let options: CallGraphOptions
    public let probes: UprobeTargets
    /// The functions probed (the attach cookie is the index here).
    public let selected: [UprobeFunction]
    public let triggerIndex: Int
    private let bpf: BPFObject
    private var builder: CallTreeBuilder?
    private var threadNames: [Int32: String] = [:]

    public init(target: PythonTarget, options: CallGraphOptions) throws {
        guard let live = target.source as? LiveProcessTarget else { throw NativeCaptureUnavailable("callgraph needs a live process") }
        self.target = target
        self.options = options
        let object: LoadedObject
        if let module = options.module {
            object = try UprobeTargets.object(named: module, in: live)
        } else if let runtime = target.runtimeObject {
            object = runtime
        } else {
            throw NativeCaptureUnavailable("the interpreter's object file is unknown")
        }
        probes = UprobeTargets(object: object, hostPath: live.process.hostPath(forTargetPath: object.path))
        guard let trigger = probes.function(named: options.trigger) else {
            throw UprobeTargetError.noSuchFunction(options.trigger, path: object.path)
        }
        var selected = probes.functions
        if let glob = options.functions {
            selected = selected.filter { fnmatch(glob, $0.name, 0) == 0 || $0 == trigger.function }
        }
        self.selected = selected
        triggerIndex = selected.firstIndex(of: trigger.function) ?? 0
        bpf = try BPFObject(name: "callgraph", hex: BPFCallgraphProgramObject.hex)
        try bpf.setAttachType(ofProgram: "on_entry_multi", to: UInt32(PYTAP_BPF_TRACE_UPROBE_MULTI))
        try bpf.setAttachType(ofProgram: "on_return_multi", to: UInt32(PYTAP_BPF_TRACE_UPROBE_MULTI))
        try bpf.load()
        var state = pytap_callgraph_state()
        state.trigger = UInt32(triggerIndex)
        state.invocations_left = UInt32(clamping: options.count)
        state.events_left = UInt64(max(0, options.maxEvents))
        try bpf.map("state").update(UInt32(0), state)
        try bpf.openRing("events")
    }

    /// Places the probes. Multi-uprobe links where the kernel has them (seconds for every
    /// function of libpython), else one perf uprobe per probe.
    public func attach() throws -> CallGraphAttachment {
        let started = MonotonicClock.now()
        let batch = UprobeBatch(probes: selected.enumerated().map { (offset: $0.element.fileOffset, cookie: UInt64($0.offset)) })
        let result = try bpf.attachUprobes(batch, path: probes.hostPath, pid: target.pid,
                                           multiEntry: "on_entry_multi", multiExit: "on_return_multi",
                                           entry: "on_entry", exit: "on_return")
        if !result.attached.contains(UInt64(triggerIndex)) {
            throw NativeCaptureUnavailable("the kernel refused a uprobe on \(options.trigger)")
        }
        return CallGraphAttachment(path: probes.path, functions: result.attached.count, withReturn: result.withReturn.count,
                                   refused: result.refused.count, skipped: probes.skipped, multiLinks: result.multiLinks,
                                   links: result.links, seconds: Double(MonotonicClock.now() - started) / 1e9)
    }

    /// Removes every probe now.
    public func detach() { bpf.detachAll() }

    /// Hands each traced invocation to `onInvocation` as it completes, until `count` are
    /// done, `shouldStop` says so, or the target exits; then detaches.
    public func run(shouldStop: () -> Bool, onInvocation: (CallInvocation) -> Void) throws -> CallGraphSummary {
        var summary = CallGraphSummary()
        defer { detach() }
        try CallGraphSummary.poll(bpf, recording: pytap_call_event.self, from: target, until: options.count, into: &summary,
                                  shouldStop: shouldStop, handle: handle, onInvocation: onInvocation)
        detach()
        // An invocation still open when the trace stopped.
        if summary.invocations < options.count, var open = builder {
            open.end()
            builder = nil
            if let invocation = open.invocation { summary.invocations += 1; onInvocation(invocation) }
        }
        summary.dropped = state()?.dropped ?? 0
        return summary
    }

    /// Feeds one record to the current invocation; the invocation when it completes.
    private func handle(_ event: pytap_call_event) -> CallInvocation? {
        let function = event.function
        let name = Int(function) < selected.count ? selected[Int(function)].name : "?"
        switch event.kind {
        case UInt32(PYTAP_CALL_ENTRY.rawValue):
            if builder?.number == Int(event.invocation) {
                // In place: a copy would copy the tree's widest node on every record.
                builder?.enter(name: name, function: UInt64(function), stack: event.stack, time: event.time_ns)
            } else {
                // A new invocation: the previous one, if any, lost its end.
                let tid = Int32(bitPattern: event.tid)
                builder = CallTreeBuilder(number: Int(event.invocation), tid: tid, threadName: threadName(tid),
                                          startTime: event.time_ns, root: name, function: UInt64(function), stack: event.stack)
            }
        case UInt32(PYTAP_CALL_RETURN.rawValue):
            builder?.leave(function: UInt64(function), stack: event.stack, time: event.time_ns)
        default:
            builder?.end()
        }
        guard let current = builder, current.isFinished else { return nil }
        builder = nil
        return current.invocation
    }

    /// The thread's name as `ps` shows it (SystemTap's `execname()`).
    private func threadName(_ tid: Int32) -> String {
        if let known = threadNames[tid] { return known }
        let comm = (try? ProcFiles.readString("/proc/\(target.pid)/task/\(tid)/comm"))?.split(separator: "\n").first
        let name = comm.map(String.init) ?? target.source.name()
        threadNames[tid] = name
        return name
    }

    /// The program's state (its counters: dropped records).
    private func state() -> pytap_callgraph_state? {
        (try? bpf.map("state"))?.lookup(UInt32(0), as: pytap_callgraph_state.self)
    }
}
