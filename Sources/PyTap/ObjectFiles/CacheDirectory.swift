import Glibc

/// pytap's on-disk cache directory (what `InflatedSectionCache` and `SymbolIndexFile` keep
/// there): `$PYTAP_CACHE_DIR`, else `$XDG_CACHE_HOME/pytap`, else `$HOME/.cache/pytap`;
/// `PYTAP_CACHE_DIR=off` turns it off. Used only when the directory is pytap's own (owned by
/// the effective user, writable by no one else) and each file too, so no other user can
/// plant one. A file is written under a unique temporary name and renamed into place, so
/// concurrent pytaps never see a partial file. The directory is bounded: a store that finds
/// it over `maximumBytes` removes the least recently modified files first.
public struct CacheDirectory: Sendable {
    public static let shared = CacheDirectory(path: CacheDirectory.defaultPath())
    /// Room for the caches of a few dozen large debug files (libc6-dbg's: ~9 MiB).
    public static let defaultMaximumBytes = 512 << 20

    public let path: String?
    public var maximumBytes: Int

    public init(path: String?, maximumBytes: Int = CacheDirectory.defaultMaximumBytes) {
        self.path = path
        self.maximumBytes = maximumBytes
    }

    static func defaultPath() -> String? {
        func variable(_ name: String) -> String? {
            guard let value = getenv(name) else { return nil }
            let text = String(cString: value)
            return text.isEmpty ? nil : text
        }
        let chosen: String?
        if let explicit = variable("PYTAP_CACHE_DIR") {
            chosen = explicit == "off" ? nil : explicit
        } else if let xdg = variable("XDG_CACHE_HOME") {
            chosen = xdg + "/pytap"
        } else {
            chosen = variable("HOME").map { $0 + "/.cache/pytap" }
        }
        // Relative paths would depend on where pytap was started.
        return chosen.flatMap { $0.hasPrefix("/") ? $0 : nil }
    }

    /// The path of the entry `name` (letters, digits, `-` and `_` kept), nil when off.
    public func entry(_ name: String) -> String? {
        guard let path else { return nil }
        return path + "/" + name.filter { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
    }

    /// A cached file mapped, when it exists, is a regular file of the effective user's
    /// writable by no one else, in a directory that is pytap's own; nil otherwise.
    public func map(_ name: String) -> MappedFile? {
        guard let entry = entry(name), ownedDirectory(create: false) else { return nil }
        let fd = open(entry, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(),
              info.st_mode & 0o022 == 0 else { return nil }
        return try? MappedFile(path: "/proc/self/fd/\(fd)")
    }

    /// Writes `name` from the given parts (best effort: a failure leaves no file behind).
    public func store(_ name: String, parts: [UnsafeRawBufferPointer]) {
        guard let entry = entry(name), ownedDirectory(create: true) else { return }
        let total = parts.reduce(0) { $0 + $1.count }
        prune(making: total)
        let temporary = entry + ".tmp.\(getpid()).\(String(UInt64.random(in: 0 ... .max), radix: 16))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let written = parts.allSatisfy { writeAll(fd, $0) }
        close(fd)
        if !written || rename(temporary, entry) != 0 { unlink(temporary) }
    }

    private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }

    /// Removes the least recently modified files until `incoming` more bytes fit under
    /// `maximumBytes`.
    private func prune(making incoming: Int) {
        guard let path, let directory = opendir(path) else { return }
        var files = [(name: String, size: Int, modified: Int)]()
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
            var info = stat()
            guard name != ".", name != "..", lstat(path + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            files.append((name, Int(info.st_size), Int(info.st_mtim.tv_sec)))
        }
        closedir(directory)
        var total = files.reduce(incoming) { $0 + $1.size }
        for file in files.sorted(by: { $0.modified < $1.modified }) where total > maximumBytes {
            if unlink(path + "/" + file.name) == 0 { total -= file.size }
        }
    }

    /// Whether the directory exists (made, 0700, when `create`) and is the effective user's
    /// alone.
    func ownedDirectory(create: Bool) -> Bool {
        guard let path else { return false }
        var info = stat()
        if lstat(path, &info) != 0 {
            guard create, errno == ENOENT else { return false }
            var prefix = ""
            for component in path.split(separator: "/", omittingEmptySubsequences: true) {
                prefix += "/" + component
                _ = mkdir(prefix, 0o700)
            }
            guard lstat(path, &info) == 0 else { return false }
        }
        return info.st_mode & S_IFMT == S_IFDIR && info.st_uid == geteuid() && info.st_mode & 0o022 == 0
    }
}
