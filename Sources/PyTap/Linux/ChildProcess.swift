import Glibc
import SystemPackage

/// A command pytap started (launch mode), spawned with posix_spawnp so it shares the
/// terminal, environment and process group (Ctrl-C reaches both).
public final class ChildProcess {
    public let pid: Int32
    public private(set) var exitStatus: Int32?

    public init(arguments: [String]) throws {
        guard let program = arguments.first else { throw SystemCallError("posix_spawnp", .invalidArgument) }
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cArguments.append(nil)
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, program, nil, nil, cArguments, environ)
        guard result == 0 else { throw SystemCallError("cannot run \(program)", Errno(rawValue: result)) }
        self.pid = pid
    }

    /// Whether it has exited (reaps it without blocking).
    public var hasExited: Bool {
        if exitStatus != nil { return true }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            exitStatus = ChildProcess.decode(status)
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
        let code = ChildProcess.decode(status)
        exitStatus = code
        return code
    }

    static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }
}
