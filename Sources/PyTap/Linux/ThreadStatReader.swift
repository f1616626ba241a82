import Glibc
import SystemPackage

/// Reads /proc/PID/task/TID/stat for many threads, keeping each file open and re-reading
/// it with pread: 2.7 µs a thread instead of 7 µs for open+read+close.
public final class ThreadStatReader {
    public let pid: Int32
    private var files: [Int32: FileDescriptor] = [:]
    private var buffer = [UInt8](repeating: 0, count: 1024)

    public init(pid: Int32) {
        self.pid = pid
    }

    deinit {
        for fd in files.values { try? fd.close() }
    }

    /// The thread's current stat, or nil when the thread is gone.
    public func stat(tid: Int32) -> ProcessStat? {
        let fd: FileDescriptor
        if let open = files[tid] {
            fd = open
        } else {
            guard let opened = try? FileDescriptor.open(FilePath("/proc/\(pid)/task/\(tid)/stat"), .readOnly, options: [.closeOnExec]) else {
                return nil
            }
            files[tid] = opened
            fd = opened
        }
        let n = buffer.withUnsafeMutableBytes { raw -> Int in
            guard let base = raw.baseAddress else { return -1 }
            var result: Int
            repeat { result = pread(fd.rawValue, base, raw.count, 0) } while result < 0 && errno == EINTR
            return result
        }
        guard n > 0, let stat = ProcessStat(bytes: buffer[0..<n]) else {
            forget(tid: tid)
            return nil
        }
        return stat
    }

    /// Closes the files of threads not in `alive`.
    public func retain(only alive: Set<Int32>) {
        for tid in files.keys where !alive.contains(tid) { forget(tid: tid) }
    }

    private func forget(tid: Int32) {
        if let fd = files.removeValue(forKey: tid) { try? fd.close() }
    }
}
