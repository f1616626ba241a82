import Glibc

/// Where `sample -o PATH` writes. Decided, and checked for writability, before recording
/// starts, so a bad path fails at once rather than after the whole `--duration`:
/// - `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N` (and so `>(...)` process
///   substitutions): pytap's own descriptor N, as the shell treats them;
/// - anything else that is not a regular file (a device, a FIFO): opened and written
///   through, never replaced;
/// - a regular file, or a new one: written whole under a temporary name in its directory,
///   given the old file's owner and mode, and renamed over it, so a reader never sees half
///   a profile. A symlink is followed: the file it names is replaced, the link stays. A
///   file owned by someone else that pytap (not root) may write is overwritten in place.
struct OutputFile {
    enum Destination {
        case descriptor(Int32)
        case replace(path: String, existing: stat?)
        case inPlace(path: String)
    }

    let path: String
    let destination: Destination

    /// Resolves `path` and checks it can be written; throws a `Failure` naming the cause.
    static func prepare(_ path: String) throws -> OutputFile {
        func failure(_ reason: String) -> Failure { Failure(message: "cannot write \(path): \(reason)", status: .failure) }
        guard !path.isEmpty else { throw failure("empty file name") }
        if let fd = descriptorNumber(path) {
            let flags = fcntl(fd, F_GETFL)
            guard flags >= 0 else { throw failure("descriptor \(fd) is not open") }
            guard flags & O_ACCMODE != O_RDONLY else { throw failure("descriptor \(fd) is open for reading only") }
            return OutputFile(path: path, destination: .descriptor(fd))
        }
        if path.hasSuffix("/") { throw failure("that names a directory; give a file name, such as \(path)profile.svg") }
        let resolved = try resolveSymlinks(path, failure)
        var info = stat()
        if stat(resolved, &info) == 0 {
            let type = info.st_mode & S_IFMT
            if type == S_IFDIR { throw failure("it is a directory; give a file name, such as \(path)/profile.svg") }
            if type != S_IFREG {
                // A device or FIFO: write through (a FIFO's open waits for its reader, as `>` does).
                let fd = open(resolved, O_WRONLY | O_CLOEXEC | O_NOCTTY)
                guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
                return OutputFile(path: path, destination: .descriptor(fd))
            }
            guard access(resolved, W_OK) == 0 else { throw failure(String(cString: strerror(errno))) }
            if geteuid() != 0 && info.st_uid != geteuid() {
                return OutputFile(path: path, destination: .inPlace(path: resolved))
            }
            try probeDirectory(of: resolved, failure)
            return OutputFile(path: path, destination: .replace(path: resolved, existing: info))
        }
        guard errno == ENOENT else { throw failure(String(cString: strerror(errno))) }
        try probeDirectory(of: resolved, failure)
        return OutputFile(path: path, destination: .replace(path: resolved, existing: nil))
    }

    func write(_ bytes: [UInt8]) throws {
        func failure(_ error: Int32) -> OutputError {
            OutputError(errno: error, message: "cannot write \(path): \(String(cString: strerror(error)))")
        }
        switch destination {
        case .descriptor(let fd):
            if let error = bytes.withUnsafeBytes({ writeAll(fd, $0) }) { throw failure(error) }
        case .inPlace(let target):
            let fd = open(target, O_WRONLY | O_TRUNC | O_CLOEXEC)
            guard fd >= 0 else { throw failure(errno) }
            defer { close(fd) }
            if let error = bytes.withUnsafeBytes({ writeAll(fd, $0) }) { throw failure(error) }
        case .replace(let target, let existing):
            let temporary = target + ".pytap-tmp"
            var fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd < 0 && errno == EEXIST {   // left by a pytap that was killed
                unlink(temporary)
                fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            }
            guard fd >= 0 else { throw failure(errno) }
            if let existing {
                _ = fchown(fd, existing.st_uid, existing.st_gid)
                _ = fchmod(fd, existing.st_mode & 0o7777)
            }
            let error = bytes.withUnsafeBytes { writeAll(fd, $0) }
            close(fd)
            if let error {
                unlink(temporary)
                throw failure(error)
            }
            guard rename(temporary, target) == 0 else {
                let error = errno
                unlink(temporary)
                throw failure(error)
            }
        }
    }

    /// N for the paths that name one of pytap's own descriptors.
    static func descriptorNumber(_ path: String) -> Int32? {
        switch path {
        case "/dev/stdin": return 0
        case "/dev/stdout": return 1
        case "/dev/stderr": return 2
        default:
            for prefix in ["/dev/fd/", "/proc/self/fd/", "/proc/\(getpid())/fd/"] where path.hasPrefix(prefix) {
                return Int32(path.dropFirst(prefix.count))
            }
            return nil
        }
    }

    /// The path a chain of symlinks ends at (which may not exist yet).
    static func resolveSymlinks(_ path: String, _ failure: (String) -> Failure) throws -> String {
        var current = path
        for _ in 0..<40 {
            var info = stat()
            guard lstat(current, &info) == 0, info.st_mode & S_IFMT == S_IFLNK else { return current }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(current, &buffer, buffer.count - 1)
            guard n > 0 else { throw failure(String(cString: strerror(errno))) }
            let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            current = target.hasPrefix("/") ? target : directory(of: current) + "/" + target
        }
        throw failure("too many levels of symbolic links")
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Proves a new file can be created next to `path` (the directory exists, is one, and
    /// is writable) by creating and removing one.
    static func probeDirectory(of path: String, _ failure: (String) -> Failure) throws {
        let directory = directory(of: path)
        var info = stat()
        guard stat(directory, &info) == 0 else {
            throw failure(errno == ENOENT ? "the directory \(directory) does not exist" : String(cString: strerror(errno)))
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw failure("\(directory) is not a directory") }
        let probe = path + ".pytap-tmp"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 || errno == EEXIST else { throw failure(String(cString: strerror(errno))) }
        if fd >= 0 {
            close(fd)
            unlink(probe)
        }
    }
}
