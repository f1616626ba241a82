import Glibc
import PyTap

/// The Python process a command works on: attached by PID, or launched (`-- cmd ...`) and
/// waited for until it, or one of its descendants, runs a Python interpreter.
struct AcquiredTarget {
    var target: PythonTarget
    /// The launched command, in launch mode.
    var child: ChildProcess?

    /// pytap's exit status once its work is done. Launch mode passes the command's on, as
    /// `time` does (128+N when a signal N ended it); when pytap itself ended the recording
    /// early (`-t`, `q` in top) it ends the command too and exits 0.
    func finish(stoppedByPytap: Bool) -> Int32 {
        guard let child else { return ExitStatus.ok.rawValue }
        if stoppedByPytap && !child.hasExited {
            child.terminate()
            return ExitStatus.ok.rawValue
        }
        return child.wait()
    }

    /// Launch mode: the next Python process the command runs after the sampled ones exited
    /// (`sh -c 'python a; python b'`); nil once the command exits, on a stop signal, at
    /// `deadline`, or when pytap attached by PID.
    func nextPython(after sampled: Set<Int32>, deadline: UInt64?) -> PythonTarget? {
        guard let child else { return nil }
        if case .found(let next) = TargetAcquisition.waitForPython(under: child, excluding: sampled, deadline: deadline) {
            return next
        }
        return nil
    }
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
        InterruptFlag.forward(to: child.pid)
        switch waitForPython(under: child, excluding: [], deadline: MonotonicClock.now() + launchWait) {
        case .found(let target):
            return AcquiredTarget(target: target, child: child)
        case .interrupted:
            child.terminate()
            throw Failure(message: "interrupted while waiting for \(command[0]) to become a Python process", status: .interrupted)
        case .commandExited:
            throw Failure(message: "\(command[0]) exited (status \(child.exitStatus ?? 0)) before a Python interpreter started in it",
                          status: .notPython)
        case .timedOut(let lastError):
            child.terminate()
            let detail = lastError.map { " (\(Failure.from($0, pid: nil).message))" } ?? ""
            throw Failure(message: "\(command[0]) did not become a Python process within \(launchWait / 1_000_000_000)s\(detail)",
                          status: .notPython)
        }
    }

    enum Wait {
        case found(PythonTarget)
        case interrupted
        case commandExited
        case timedOut(lastError: Error?)
    }

    /// Polls the command and its descendants (other than `excluding`, the ones already
    /// sampled) until one runs Python code, the command exits, a stop signal arrives or
    /// `deadline` (monotonic ns) passes.
    static func waitForPython(under child: ChildProcess, excluding: Set<Int32>, deadline: UInt64?) -> Wait {
        var lastError: Error?
        while deadline.map({ MonotonicClock.now() < $0 }) ?? true {
            if InterruptFlag.isSet { return .interrupted }
            for pid in [child.pid] + LinuxProcess.descendants(of: child.pid, limit: 256) where !excluding.contains(pid) {
                do {
                    return .found(try PythonTarget.attachRunning(pid: pid))
                } catch {
                    lastError = error
                }
            }
            if child.hasExited { return .commandExited }
            MonotonicClock.sleep(until: MonotonicClock.now() + 5_000_000)
        }
        return .timedOut(lastError: lastError)
    }
}
