import ArgumentParser
import Glibc
import PyTap

/// Exit codes pytap documents (see `pytap --help`).
enum ExitStatus: Int32 {
    case ok = 0
    case failure = 1
    case noSuchProcess = 2
    case permissionDenied = 3
    case notPython = 4
    case processExited = 5
    case partialStacks = 6
    /// Ctrl-C (or SIGTERM, …) before there was anything to record.
    case interrupted = 130
}

/// A failure as the user sees it: one line naming the cause and what to do, and an exit code.
struct Failure: Error {
    var message: String
    var status: ExitStatus

    /// Prints the message to stderr and exits with the status.
    func exit() -> Never {
        writeStandardError("pytap: error: \(message.escapingControlCharacters)\n")
        Glibc.exit(status.rawValue)
    }

    /// Turns any error of the library into what a user reads. `pid` is the target, used to
    /// tell "exited meanwhile" from other read failures.
    static func from(_ error: Error, pid: Int32?) -> Failure {
        let gone = pid.map { !isAlive($0) } ?? false
        switch error {
        case let failure as Failure:
            return failure
        case let error as OutputError:
            return Failure(message: error.message, status: .failure)
        case let error as ProcessError:
            switch error {
            case .noSuchProcess:
                return Failure(message: error.description, status: .noSuchProcess)
            case .permissionDenied(let pid, _):
                return permission(pid)
            case .exited(let pid):
                return exited(pid)
            case .system(let pid, _, _):
                if gone { return exited(pid) }
                return Failure(message: error.description, status: .failure)
            }
        case let error as MemoryReadError:
            return memoryFailure(error, context: nil, pid: pid, gone: gone)
        case let error as StructureReadError:
            return memoryFailure(error.cause, context: error.description, pid: pid, gone: gone)
        case let error as AttachError:
            switch error {
            case .notPython(let pid, _, _), .notInitialized(let pid):
                if gone { return exited(pid) }
            default:
                break
            }
            return Failure(message: error.description, status: .notPython)
        case let error as LayoutError:
            return Failure(message: error.description, status: .notPython)
        default:
            if let pid, gone { return exited(pid) }
            return Failure(message: "\(error)", status: .failure)
        }
    }

    /// A failed memory read: the process is gone, access is denied, or the read itself
    /// failed (`context` says what was being read, when known).
    static func memoryFailure(_ error: MemoryReadError, context: String?, pid: Int32?, gone: Bool) -> Failure {
        let detail = context ?? "memory read failed: \(error)"
        guard let pid else { return Failure(message: detail, status: .failure) }
        if gone || error == .processGone { return exited(pid) }
        if error == .permissionDenied { return permission(pid) }
        return Failure(message: "process \(pid): \(detail); the interpreter may be shutting down", status: .failure)
    }

    static func exited(_ pid: Int32) -> Failure {
        if let stat = try? LinuxProcess(pid: pid).status(), stat.state == "Z" {
            return Failure(message: "process \(pid) is a zombie: it has exited and its parent (PID \(stat.parentPID)) has not reaped it; "
                           + "there is no Python left to read", status: .processExited)
        }
        return Failure(message: "process \(pid) exited while pytap was reading it", status: .processExited)
    }

    static func permission(_ pid: Int32) -> Failure {
        Failure(message: "permission denied reading process \(pid): \(PermissionCause.explain(pid: pid))", status: .permissionDenied)
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard let process = try? LinuxProcess(pid: pid) else { return false }
        return process.isAlive
    }
}

func readFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw Failure(message: "cannot open \(path)", status: .failure) }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 4096)
    let n = read(fd, &bytes, bytes.count)
    return n > 0 ? Array(bytes[0..<n]) : []
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
