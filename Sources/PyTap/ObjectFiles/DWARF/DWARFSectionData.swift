/// The bytes of one DWARF section, kept alive for the life of the reader. Uncompressed
/// sections of an ELF file point straight into its memory mapping (the mapping is kept as
/// the owner); inflated or test-supplied sections are copied once into memory owned here,
/// or mapped from `InflatedSectionCache` when a large section was inflated before.
/// Readers get an UnsafeRawBufferPointer so the hot scanning loop has no array overhead.
final class DWARFSectionData: @unchecked Sendable {
    let kind: DWARFSectionKind
    let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject?
    private let ownsMemory: Bool

    /// A copy of `array`.
    init(kind: DWARFSectionKind, copying array: [UInt8]) {
        self.kind = kind
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(array.count, 1), alignment: 16)
        array.withUnsafeBytes { source in
            if let base = source.baseAddress, let destination = memory.baseAddress {
                destination.copyMemory(from: base, byteCount: source.count)
            }
        }
        bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(memory)[0..<array.count])
        owner = nil
        ownsMemory = true
    }

    /// A section of an ELF file: mapped bytes when stored plainly, inflated otherwise.
    init(kind: DWARFSectionKind, elf: ELFFile, section: ELFSection) throws {
        self.kind = kind
        if section.flags & ELFSection.flagCompressed == 0 {
            bytes = try elf.rawBytes(of: section)
            owner = elf.file
            ownsMemory = false
        } else {
            let (stream, size) = try elf.compressedStream(of: section)
            let cache = InflatedSectionCache.shared
            if let cached = cache.cached(elf: elf, section: section, stream: stream, size: size) {
                bytes = UnsafeRawBufferPointer(rebasing: cached.bytes[(cached.bytes.count - size)...])
                owner = cached
                ownsMemory = false
                return
            }
            // Inflated straight into memory owned here: no zero fill, no second copy.
            let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
            do {
                try elf.inflate(stream, into: UnsafeMutableRawBufferPointer(rebasing: memory[0..<size]), section: section)
            } catch {
                memory.deallocate()
                throw error
            }
            bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(memory)[0..<size])
            owner = nil
            ownsMemory = true
            cache.store(elf: elf, section: section, stream: stream, inflated: bytes)
        }
    }

    /// An empty section, for the optional ones a file lacks.
    init(empty kind: DWARFSectionKind) {
        self.kind = kind
        bytes = UnsafeRawBufferPointer(start: nil, count: 0)
        owner = nil
        ownsMemory = false
    }

    deinit {
        if ownsMemory, let base = bytes.baseAddress {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    var count: Int { bytes.count }

    func cursor(at offset: Int, end: Int? = nil) -> DWARFCursor {
        DWARFCursor(bytes: bytes, section: kind, offset: offset, end: min(end ?? bytes.count, bytes.count))
    }
}
