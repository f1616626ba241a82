/// CPython's remote-debugging protocol (PEP 768, 3.14+: what `sys.remote_exec` does): the
/// path of a script is written into a thread state's `remote_debugger_support` buffer, its
/// pending flag set and `_PY_EVAL_PLEASE_STOP_BIT` raised in its eval breaker; the thread
/// runs the script at its next check of the eval breaker. Every offset comes from the
/// target's own `_Py_DebugOffsets` (`debugger_support.*`), so a version is supported
/// exactly when its struct has those members. The only code in pytap that writes to a
/// target, used only by `memtrace --via tracemalloc`.
public struct RemoteExecRequest {
    /// Why a script cannot be handed to the target.
    public enum Refusal: Error, Equatable, Sendable {
        /// The version has no remote-debugging support (before 3.14).
        case unsupported(version: String)
        /// Started with `-X disable-remote-debug`, `PYTHON_DISABLE_REMOTE_DEBUG`, or built
        /// without it.
        case disabled
        /// No interpreter or thread state to hand the script to.
        case noThread
        /// The path does not fit the thread state's buffer.
        case pathTooLong(limit: Int)
    }

    /// `_PY_EVAL_PLEASE_STOP_BIT` (Include/internal/pycore_ceval.h): makes the thread look
    /// at its pending calls, the remote debugger's among them.
    static let pleaseStopBit: UInt64 = 1 << 5

    /// The `_Py_DebugOffsets` members the protocol needs; all are byte offsets.
    struct Offsets {
        var enabledInInterpreter: UInt64
        var threadsMain: UInt64
        var evalBreaker: UInt64
        var support: UInt64
        var pendingCall: UInt64
        var scriptPath: UInt64
        var scriptPathSize: UInt64

        init?(_ members: [String: UInt64]) {
            func member(_ name: String) -> UInt64? { members[name].flatMap { $0 < 1 << 24 ? $0 : nil } }
            guard let enabled = member("debugger_support.remote_debugging_enabled"),
                  let main = member("interpreter_state.threads_main"),
                  let breaker = member("debugger_support.eval_breaker"),
                  let support = member("debugger_support.remote_debugger_support"),
                  let pending = member("debugger_support.debugger_pending_call"),
                  let path = member("debugger_support.debugger_script_path"),
                  let size = member("debugger_support.debugger_script_path_size"), size > 1 else { return nil }
            (enabledInInterpreter, threadsMain, evalBreaker, self.support) = (enabled, main, breaker, support)
            (pendingCall, scriptPath, scriptPathSize) = (pending, path, size)
        }
    }

    let target: PythonTarget
    let reader: PythonReader
    let offsets: Offsets
    let writer: ProcessMemoryWriter
    /// The interpreter the scripts go to (the main one).
    let interpreter: UInt64

    /// Reads the target's `_Py_DebugOffsets`; throws `Refusal` when the protocol is not
    /// available in it.
    public init(target: PythonTarget) throws {
        let version = target.version.description
        guard let runtime = target.addresses.runtime,
              let count = DebugOffsets.byteCount(for: target.version.minorVersion) else { throw Refusal.unsupported(version: version) }
        let debugOffsets = try DebugOffsets(bytes: target.memory.readBytes(runtime, count: count))
        guard let offsets = Offsets(debugOffsets.members) else { throw Refusal.unsupported(version: version) }
        self.target = target
        self.offsets = offsets
        let reader = try PythonReader(target: target)
        self.reader = reader
        writer = ProcessMemoryWriter(pid: target.pid)
        let interpreters = try reader.interpreters()
        guard let main = interpreters.first(where: { reader.interpreterID($0) == 0 }) ?? interpreters.first else { throw Refusal.noThread }
        interpreter = main
    }

    /// `config.remote_debug` of the interpreter: 0 when remote debugging was disabled.
    public func isEnabled() throws -> Bool {
        try target.memory.readInteger(interpreter &+ offsets.enabledInInterpreter, as: Int32.self) == 1
    }

    /// The thread states a request goes to: the main thread's first, then the others.
    public func threadStates() throws -> [UInt64] {
        let main = try target.memory.readPointer(interpreter &+ offsets.threadsMain)
        var states = main != 0 ? [main] : []
        for state in try reader.threadStates(of: interpreter) where state.address != main { states.append(state.address) }
        return states
    }

    /// Asks each of `threads` to run the script at `path` (as the target sees it); the first
    /// thread to reach its eval breaker runs it, so the script must tell repeated runs
    /// apart itself. Returns the threads written to.
    @discardableResult
    public func send(scriptPath path: String, to threads: [UInt64]) throws -> [UInt64] {
        guard try isEnabled() else { throw Refusal.disabled }
        var bytes = Array(path.utf8)
        guard bytes.count < Int(offsets.scriptPathSize) else { throw Refusal.pathTooLong(limit: Int(offsets.scriptPathSize) - 1) }
        bytes.append(0)
        guard !threads.isEmpty else { throw Refusal.noThread }
        for thread in threads {
            let support = thread &+ offsets.support
            try writer.write(bytes, at: support &+ offsets.scriptPath)
            try writer.write(Int32(1), at: support &+ offsets.pendingCall)
            let breaker = thread &+ offsets.evalBreaker
            let value = try target.memory.readInteger(breaker, as: UInt64.self)
            try writer.write(value | RemoteExecRequest.pleaseStopBit, at: breaker)
        }
        return threads
    }

    /// Takes back the requests not yet run whose path starts with `pathPrefix`, on the
    /// threads that still exist: the path is emptied first (a thread that copies it
    /// meanwhile copies an empty path, which CPython skips), then the pending flag cleared.
    /// A thread that ran it has cleared its flag itself; the stop bit is left, as CPython
    /// clears it at the next check.
    public func withdraw(pathPrefix: String) {
        for thread in pendingThreads(pathPrefix: pathPrefix) {
            let support = thread &+ offsets.support
            try? writer.write(UInt8(0), at: support &+ offsets.scriptPath)
            try? writer.write(Int32(0), at: support &+ offsets.pendingCall)
        }
    }

    /// The threads whose request for a path starting with `pathPrefix` is still pending
    /// (none once a thread ran it: CPython clears the flag of the thread that runs it).
    public func pendingThreads(pathPrefix: String) -> [UInt64] {
        let prefix = Array(pathPrefix.utf8)
        return ((try? threadStates()) ?? []).filter { thread in
            let support = thread &+ offsets.support
            return (try? target.memory.readInteger(support &+ offsets.pendingCall, as: Int32.self)) == 1
                && (try? target.memory.readBytes(support &+ offsets.scriptPath, count: prefix.count)) == prefix
        }
    }
}

extension RemoteExecRequest {
    /// Whether the target's version has the protocol (its `_Py_DebugOffsets` has the
    /// `debugger_support` members), whether or not the target disabled it.
    public static func isSupported(by target: PythonTarget) -> Bool {
        do {
            _ = try RemoteExecRequest(target: target)
            return true
        } catch {
            return false
        }
    }
}
