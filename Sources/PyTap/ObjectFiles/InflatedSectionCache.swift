import CLinux
import Glibc

/// Inflated copies of large compressed sections (the `.debug_info` of Debian's libc6-dbg:
/// 1.6 MiB that inflate to 5.8 MiB, ~40% of a `dump --native`), kept in pytap's
/// `CacheDirectory` by build-id so the next pytap maps the copy instead of inflating again.
/// A file is taken only when its header names the same build-id, section and compressed
/// stream (size and a CRC-32 of its first 64 KiB) and its size is exactly the header plus
/// the inflated size; anything else is inflated again and rewritten. Like the object files
/// themselves, the bytes are then parsed as untrusted input.
public final class InflatedSectionCache: @unchecked Sendable {
    /// Sections that inflate to less than this are inflated every time (fast enough).
    public static let minimumSize = 128 << 10
    public static let shared = InflatedSectionCache(directory: CacheDirectory.shared)

    public let directory: CacheDirectory

    public init(directory: CacheDirectory) {
        self.directory = directory
    }

    public convenience init(directory: String?) {
        self.init(directory: CacheDirectory(path: directory))
    }

    /// The inflated section from the cache, mapped; nil when there is no valid copy.
    public func cached(elf: ELFFile, section: ELFSection, stream: UnsafeRawBufferPointer, size: Int) -> MappedFile? {
        guard size >= InflatedSectionCache.minimumSize, let name = name(elf: elf, section: section),
              let mapped = directory.map(name) else { return nil }
        let header = self.header(elf: elf, section: section, stream: stream, size: size)
        guard mapped.bytes.count == header.count + size, mapped.bytes.starts(with: header) else { return nil }
        return mapped
    }

    /// Stores an inflated section (best effort: a failure leaves no file behind).
    public func store(elf: ELFFile, section: ELFSection, stream: UnsafeRawBufferPointer, inflated: UnsafeRawBufferPointer) {
        guard inflated.count >= InflatedSectionCache.minimumSize, let name = name(elf: elf, section: section) else { return }
        let header = self.header(elf: elf, section: section, stream: stream, size: inflated.count)
        header.withUnsafeBytes { directory.store(name, parts: [$0, inflated]) }
    }

    /// `<build-id>-<section>`: one file per section of a build (the debug file and the
    /// stripped file share a build-id; only the debug file has the big sections).
    private func name(elf: ELFFile, section: ELFSection) -> String? {
        guard let id = elf.buildIDHex, !id.isEmpty else { return nil }
        return id + "-" + section.name.filter { $0.isLetter || $0.isNumber || $0 == "_" }
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
}
