import Glibc
import SystemPackage

/// What tells one program image of a process from the next: `execve` keeps the PID but
/// replaces the executable and lays out a new address space (a new stack and code start,
/// also when it execs the same file).
public struct ProcessImage: Equatable, Sendable {
    /// Device and inode of the executable (/proc/PID/exe).
    public var device: UInt64
    public var inode: UInt64
    /// Fields 26 and 28 of /proc/PID/stat: start of the code and of the stack (shown to
    /// readers with ptrace access, as pytap is).
    public var startCode: UInt64
    public var startStack: UInt64

    /// Parses startcode and startstack from /proc/PID/stat.
    public static func layout(statText: String) -> (startCode: UInt64, startStack: UInt64)? {
        guard let close = statText.lastIndex(of: ")") else { return nil }
        // fields[0] is field 3 (state) of proc(5).
        let fields = statText[statText.index(after: close)...].split(separator: " ")
        guard fields.count > 25, let code = UInt64(fields[23]), let stack = UInt64(fields[25]) else { return nil }
        return (code, stack)
    }
}

extension LinuxProcess {
    /// The image the process runs now.
    public func image() throws -> ProcessImage {
        var info = stat()
        if stat("/proc/\(pid)/exe", &info) != 0 {
            throw ProcessError.from(Errno.current, pid: pid, operation: "stat /proc/\(pid)/exe")
        }
        guard let layout = ProcessImage.layout(statText: try readText("stat")) else {
            throw ProcessError.system(pid: pid, operation: "parse /proc/\(pid)/stat", errno: EINVAL)
        }
        return ProcessImage(device: UInt64(info.st_dev), inode: UInt64(info.st_ino),
                            startCode: layout.startCode, startStack: layout.startStack)
    }
}
