import CLinux
import SystemPackage

/// Stops one thread of another process for as long as a closure runs, to read its registers
/// and its stacks at one instant (`dump --native`): PTRACE_SEIZE + PTRACE_INTERRUPT, then
/// PTRACE_GETREGSET, then PTRACE_DETACH whatever the closure does. A seized thread is never
/// left stopped: if pytap dies while it holds one, the kernel detaches it and it runs on
/// (no PTRACE_O_EXITKILL).
public enum ThreadPause {
    /// How long a thread may take to stop: a runnable thread stops when next scheduled,
    /// which on a loaded machine takes a while; one in uninterruptible sleep does not stop.
    public static let stopTimeoutMilliseconds: Int32 = 1000

    /// Runs `body` with thread `tid` (pytap's namespace) stopped, handing it the thread's
    /// general registers as `PTRACE_GETREGSET(NT_PRSTATUS)` gives them (x86_64: `struct
    /// user_regs_struct`, 27 words); resumes the thread before returning.
    public static func withThreadStopped<T>(tid: Int32, _ body: ([UInt64]) throws -> T) throws -> T {
        var pendingSignal: Int32 = 0
        let stopped = clinux_thread_stop(tid, stopTimeoutMilliseconds, &pendingSignal)
        guard stopped == 0 else {
            if stopped == -Errno.timedOut.rawValue {
                _ = clinux_thread_resume(tid, 0, stopTimeoutMilliseconds)
                throw ThreadPauseError.didNotStop(tid: tid, milliseconds: Int(stopTimeoutMilliseconds))
            }
            throw SystemCallError("stopping thread \(tid) (ptrace) to read its registers", Errno(rawValue: -stopped))
        }
        defer { _ = clinux_thread_resume(tid, pendingSignal, stopTimeoutMilliseconds) }
        var words = [UInt64](repeating: 0, count: 64)
        let read = words.withUnsafeMutableBytes { clinux_thread_registers(tid, $0.baseAddress, $0.count) }
        guard read > 0 else {
            throw SystemCallError("reading thread \(tid)'s registers (PTRACE_GETREGSET)", Errno(rawValue: Int32(-read)))
        }
        return try body(Array(words.prefix(Int(read) / 8)))
    }
}

public enum ThreadPauseError: Error, CustomStringConvertible, Equatable {
    case didNotStop(tid: Int32, milliseconds: Int)

    public var description: String {
        switch self {
        case .didNotStop(let tid, let milliseconds): return "thread \(tid) did not stop within \(milliseconds) ms (uninterruptible sleep?)"
        }
    }
}
