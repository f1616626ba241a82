import Glibc
import PyTap

/// The Python process a command works on: attached by PID, or launched (`-- cmd ...`) and
/// waited for until it, or one of its descendants, runs a Python interpreter.
struct AcquiredTarget {
    var target: PythonTarget
    /// The launched command, in launch mode.
    var child: ChildProcess?
}

enum TargetAcquisition {
    /// How long a launched command may take to become Python.
    static let launchWait: UInt64 = 15_000_000_000

    static func attach(pid: Int32) throws -> AcquiredTarget {
        AcquiredTarget(target: try PythonTarget(pid: pid), child: nil)
    }

    /// Starts `command` and waits until it (or a descendant, for wrappers such as shell
    /// scripts or pyenv shims) is a running Python interpreter.
    static func launch(_ command: [String]) throws -> AcquiredTarget {
        let child: ChildProcess
        do {
            child = try ChildProcess(arguments: command)
        } catch let error as SystemCallError {
            throw Failure(message: "\(error.operation): \(error.errno.description)", status: .failure)
        }
        let deadline = MonotonicClock.now() + launchWait
        var lastError: Error?
        while MonotonicClock.now() < deadline {
            if InterruptFlag.isSet { break }
            for pid in [child.pid] + LinuxProcess.descendants(of: child.pid, limit: 256) {
                do {
                    return AcquiredTarget(target: try PythonTarget.attachRunning(pid: pid), child: child)
                } catch {
                    lastError = error
                }
            }
            if child.hasExited {
                throw Failure(message: "\(command[0]) exited (status \(child.exitStatus ?? 0)) before a Python interpreter started in it",
                              status: .notPython)
            }
            MonotonicClock.sleep(until: MonotonicClock.now() + 5_000_000)
        }
        kill(child.pid, SIGTERM)
        child.wait()
        let detail = lastError.map { " (\(Failure.from($0, pid: nil).message))" } ?? ""
        throw Failure(message: "\(command[0]) did not become a Python process within \(launchWait / 1_000_000_000)s\(detail)",
                      status: .notPython)
    }
}
