import CLinux
import Glibc

/// Inflated copies of large compressed sections (the `.debug_info` of Debian's libc6-dbg:
/// 1.6 MiB that inflate to 5.8 MiB, ~40% of a `dump --native`), kept on disk by build-id so
/// the next pytap maps the copy instead of inflating again.
///
/// Where: `$PYTAP_CACHE_DIR`, else `$XDG_CACHE_HOME/pytap`, else `$HOME/.cache/pytap`
/// (`PYTAP_CACHE_DIR=off` turns it off). Used only when that directory is pytap's own
/// (owned by the effective user, writable by no one else) and each file too, so no other
/// user can plant one. A file is written under a unique temporary name and renamed into
/// place, so concurrent pytaps never see a partial file, and the last rename wins with the
/// same bytes. A file is taken only when its header names the same build-id, section and
/// compressed stream (size and a CRC-32 of its first 64 KiB) and its size is exactly the
/// header plus the inflated size; anything else is inflated again and rewritten. Like the
/// object files themselves, the bytes are then parsed as untrusted input.
public final class InflatedSectionCache: @unchecked Sendable {
    /// Sections that inflate to less than this are inflated every time (fast enough).
    public static let minimumSize = 128 << 10
    public static let shared = InflatedSectionCache(directory: InflatedSectionCache.defaultDirectory())

    public let directory: String?

    public init(directory: String?) {
        self.directory = directory
    }

    static func defaultDirectory() -> String? {
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

    /// The inflated section from the cache, mapped; nil when there is no valid copy.
    public func cached(elf: ELFFile, section: ELFSection, stream: UnsafeRawBufferPointer, size: Int) -> MappedFile? {
        guard size >= InflatedSectionCache.minimumSize, let path = path(elf: elf, section: section),
              ownedDirectory(create: false) else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        let header = self.header(elf: elf, section: section, stream: stream, size: size)
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(),
              info.st_mode & 0o022 == 0, Int(info.st_size) == header.count + size,
              let mapped = try? MappedFile(path: "/proc/self/fd/\(fd)"), mapped.bytes.count == header.count + size,
              mapped.bytes.starts(with: header) else { return nil }
        return mapped
    }

    /// Stores an inflated section (best effort: a failure leaves no file behind).
    public func store(elf: ELFFile, section: ELFSection, stream: UnsafeRawBufferPointer, inflated: UnsafeRawBufferPointer) {
        guard inflated.count >= InflatedSectionCache.minimumSize, let path = path(elf: elf, section: section),
              ownedDirectory(create: true) else { return }
        let header = self.header(elf: elf, section: section, stream: stream, size: inflated.count)
        let temporary = path + ".tmp.\(getpid()).\(String(UInt64.random(in: 0 ... .max), radix: 16))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let written = header.withUnsafeBytes { writeAll(fd, $0) } && writeAll(fd, inflated)
        close(fd)
        if !written || rename(temporary, path) != 0 { unlink(temporary) }
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

    /// `<build-id>-<section>`: one file per section of a build (the debug file and the
    /// stripped file share a build-id; only the debug file has the big sections).
    private func path(elf: ELFFile, section: ELFSection) -> String? {
        guard let directory, let id = elf.buildIDHex, !id.isEmpty else { return nil }
        let name = section.name.filter { $0.isLetter || $0.isNumber || $0 == "_" }
        return directory + "/" + id + "-" + name
    }

    /// What a valid file starts with: magic and version, the build-id, the section, the
    /// compressed stream's size and a CRC-32 of its first 64 KiB, the inflated size.
    private func header(elf: ELFFile, section: ELFSection, stream: UnsafeRawBufferPointer, size: Int) -> [UInt8] {
        let prefix = UnsafeRawBufferPointer(rebasing: stream[0..<min(stream.count, 65536)])
        let crc = crc32(0, prefix.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt(prefix.count))
        let text = "pytap inflated section 1\n\(elf.buildIDHex ?? "")\n\(section.name)\n\(stream.count) \(crc)\n\(size)\n"
        var bytes = Array(text.utf8)
        // Padded to 16 bytes: the section data that follows stays aligned in the mapping.
        while bytes.count % 16 != 0 { bytes.append(0) }
        return bytes
    }

    /// Whether the directory exists (made, 0700, when `create`) and is the effective user's
    /// alone.
    private func ownedDirectory(create: Bool) -> Bool {
        guard let directory else { return false }
        var info = stat()
        if lstat(directory, &info) != 0 {
            guard create, errno == ENOENT else { return false }
            makeDirectories(directory)
            guard lstat(directory, &info) == 0 else { return false }
        }
        return info.st_mode & S_IFMT == S_IFDIR && info.st_uid == geteuid() && info.st_mode & 0o022 == 0
    }

    private func makeDirectories(_ path: String) {
        var prefix = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            _ = mkdir(prefix, 0o700)
        }
    }
}
