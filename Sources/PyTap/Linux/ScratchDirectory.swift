import Glibc
import SystemPackage

/// A directory pytap makes inside a target's file system (through /proc/PID/root, so the
/// target finds it under its own path, in a chroot or container too), owned by the
/// target's user so the target can write its answers there. It is held open, with its
/// parent: files are made, read and removed relative to those descriptors (never following
/// a symbolic link, since the target owns the directory), which still works after the
/// target exited. One level deep.
public final class ScratchDirectory {
    /// The directory as the target names it.
    public let targetPath: String
    let name: String
    let parent: Int32
    let directory: Int32
    let owner: (uid: uid_t, gid: gid_t)

    /// Makes `name` in `parentPath` (as the target names it) of process `pid`, mode 0700.
    public init(pid: Int32, parentPath: String, name: String) throws {
        let parentHost = "/proc/\(pid)/root" + parentPath
        parent = open(parentHost, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if parent < 0 { throw SystemCallError("open \(parentHost)", Errno.current) }
        owner = ScratchDirectory.effectiveOwner(of: pid) ?? (getuid(), getgid())
        if mkdirat(parent, name, 0o700) != 0 {
            let error = Errno.current
            close(parent)
            throw SystemCallError("mkdir \(parentHost)/\(name)", error)
        }
        directory = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if directory < 0 || (fchown(directory, owner.uid, owner.gid) != 0 && getuid() == 0) {
            let error = Errno.current
            if directory >= 0 { close(directory) }
            unlinkat(parent, name, AT_REMOVEDIR)
            close(parent)
            throw SystemCallError("chown \(parentHost)/\(name)", error)
        }
        self.name = name
        targetPath = (parentPath == "/" ? "" : parentPath) + "/" + name
    }

    /// An existing directory, to read and remove (a stale one).
    public init(pid: Int32, parentPath: String, existing name: String) throws {
        let parentHost = "/proc/\(pid)/root" + parentPath
        parent = open(parentHost, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if parent < 0 { throw SystemCallError("open \(parentHost)", Errno.current) }
        directory = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if directory < 0 {
            let error = Errno.current
            close(parent)
            throw SystemCallError("open \(parentHost)/\(name)", error)
        }
        owner = (getuid(), getgid())
        self.name = name
        targetPath = (parentPath == "/" ? "" : parentPath) + "/" + name
    }

    deinit {
        close(directory)
        close(parent)
    }

    /// Names in a directory of process `pid` (as the target names it) that start with `prefix`.
    public static func entries(pid: Int32, parentPath: String, prefix: String) -> [String] {
        ((try? ProcFiles.listDirectory("/proc/\(pid)/root" + parentPath)) ?? []).filter { $0.hasPrefix(prefix) }
    }

    /// The effective user and group of a process (/proc/PID/status).
    static func effectiveOwner(of pid: Int32) -> (uid: uid_t, gid: gid_t)? {
        guard let text = try? ProcFiles.readString("/proc/\(pid)/status") else { return nil }
        func effective(_ key: String) -> UInt32? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            return fields.count > 2 ? UInt32(fields[2]) : nil
        }
        guard let uid = effective("Uid:"), let gid = effective("Gid:") else { return nil }
        return (uid, gid)
    }

    /// Writes a new file, readable by the target's user only.
    public func create(_ file: String, contents: String) throws {
        let fd = openat(directory, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd < 0 { throw SystemCallError("create \(targetPath)/\(file)", Errno.current) }
        defer { close(fd) }
        _ = fchown(fd, owner.uid, owner.gid)
        var bytes = Array(contents.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemCallError("write \(targetPath)/\(file)", Errno.current)
            }
            bytes = bytes.dropFirst(n)
        }
    }

    /// A file's text, nil while it does not exist; at most `limit` bytes.
    public func read(_ file: String, limit: Int = 256 << 20) throws -> String? {
        let fd = openat(directory, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw SystemCallError("open \(targetPath)/\(file)", Errno.current)
        }
        defer { close(fd) }
        var result = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while result.count < limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemCallError("read \(targetPath)/\(file)", Errno.current)
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Removes every file in it, then the directory; true when it is gone.
    @discardableResult
    public func remove() -> Bool {
        for file in (try? ProcFiles.listDirectory("/proc/self/fd/\(directory)")) ?? [] { unlinkat(directory, file, 0) }
        return unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT
    }
}
