import CLinux
import Glibc
import SystemPackage

/// A command pytap started (launch mode). It shares the terminal, environment and process
/// group (Ctrl-C reaches both), starts with the signal dispositions and mask pytap
/// inherited (not pytap's ignored SIGPIPE), and is killed if pytap dies (PR_SET_PDEATHSIG).
public final class ChildProcess {
    public let pid: Int32
    public private(set) var exitStatus: Int32?

    public init(arguments: [String]) throws {
        guard let program = arguments.first else { throw SystemCallError("cannot run an empty command", .invalidArgument) }
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cArguments.append(nil)
        defer { for pointer in cArguments { free(pointer) } }
        let result = clinux_spawn(program, cArguments, SIGKILL)
        guard result > 0 else { throw SystemCallError("cannot run \(program)", Errno(rawValue: -result)) }
        self.pid = result
    }

    /// Whether it has exited (reaps it without blocking).
    public var hasExited: Bool {
        if exitStatus != nil { return true }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            reaped(status)
            return true
        }
        return result < 0
    }

    /// Waits for it to exit; returns its exit code (128+signal when killed).
    @discardableResult
    public func wait() -> Int32 {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return exitStatus ?? 1 }
        }
        reaped(status)
        return exitStatus ?? 1
    }

    private func reaped(_ status: Int32) {
        exitStatus = ChildProcess.decode(status)
        // Its PID may be reused from now on: signals must not follow it there.
        InterruptFlag.forward(to: 0)
    }

    /// Ends it and what it started (a shell's children, too): SIGTERM, then SIGKILL to
    /// those still running after `grace` seconds; reaps it.
    public func terminate(grace: Double = 2) {
        guard !hasExited else { return }
        let family = [pid] + LinuxProcess.descendants(of: pid)
        for member in family { kill(member, SIGTERM) }
        let deadline = MonotonicClock.now() + UInt64(grace * 1e9)
        func running() -> [Int32] {
            family.filter { $0 == pid ? !hasExited : ((try? LinuxProcess(pid: $0))?.isAlive ?? false) }
        }
        while !running().isEmpty && MonotonicClock.now() < deadline {
            MonotonicClock.sleep(until: MonotonicClock.now() + 10_000_000)
        }
        for member in running() { kill(member, SIGKILL) }
        wait()
    }

    static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }
}
