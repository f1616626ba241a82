import SystemPackage

/// Why a process could not be inspected, in the terms a user acts on.
public enum ProcessError: Error, Equatable, Sendable {
    /// No process has this PID (it never existed or already exited).
    case noSuchProcess(pid: Int32)
    /// The kernel refused access (not root, no CAP_SYS_PTRACE, or Yama ptrace_scope).
    case permissionDenied(pid: Int32, operation: String)
    /// The process exited while pytap was reading it.
    case exited(pid: Int32)
    /// Any other failure of a system call on the process.
    case system(pid: Int32, operation: String, errno: Int32)

    /// Classifies an errno from an operation on `pid`.
    static func from(_ errno: Errno, pid: Int32, operation: String) -> ProcessError {
        switch errno {
        case .noSuchFileOrDirectory, .noSuchProcess: return .noSuchProcess(pid: pid)
        case .permissionDenied, .notPermitted: return .permissionDenied(pid: pid, operation: operation)
        default: return .system(pid: pid, operation: operation, errno: errno.rawValue)
        }
    }
}
