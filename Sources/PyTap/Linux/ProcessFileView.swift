import Glibc

/// Files as a process sees them: its root and working directory, held open from the moment
/// this is made, so paths the process used (absolute or relative to where it ran) can still
/// be read after it exited or changed directory. Reads only regular files, at most
/// `maximumBytes`; anything else is nil.
public final class ProcessFileView {
    private let root: Int32
    private let workingDirectory: Int32
    public static let maximumBytes = 8 << 20

    /// nil when the process's root cannot be opened (it exited, or no permission).
    public init?(pid: Int32) {
        root = open("/proc/\(pid)/root", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { return nil }
        workingDirectory = open("/proc/\(pid)/cwd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }

    deinit {
        close(root)
        if workingDirectory >= 0 { close(workingDirectory) }
    }

    /// The contents of `path` (as the process names it), nil if it is not a readable regular file.
    public func contents(of path: String) -> [UInt8]? {
        guard !path.isEmpty, !path.utf8.contains(0) else { return nil }
        let base = path.hasPrefix("/") ? root : workingDirectory
        guard base >= 0 else { return nil }
        // The held directory by its descriptor, so the walk starts in the process's root or cwd.
        let local = "/proc/self/fd/\(base)/" + (path.hasPrefix("/") ? String(path.dropFirst()) : path)
        var info = stat()
        // Checked first: opening a FIFO the target named would block.
        guard stat(local, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= ProcessFileView.maximumBytes else {
            return nil
        }
        return try? ProcFiles.readAll(local, limit: ProcessFileView.maximumBytes)
    }
}
