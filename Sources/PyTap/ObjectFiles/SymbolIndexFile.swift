/// A `SymbolIndex` kept on disk (`CacheDirectory`, `<build-id>-symbols`), so that a later
/// pytap maps it instead of reading `.symtab`, `.dynsym` and the debug file's symbols and
/// sorting them again (~20% of a warm `dump --native`).
///
/// Layout: a text header padded to 16 bytes (format version, build-id, size and
/// modification time of the file and of its debug file, entry count, name bytes), then one
/// 24-byte entry per function in address order (address, size: UInt64; name offset, name
/// length: UInt32), then the names. A file whose header differs in anything (another build,
/// the debug file installed or removed since, another format), whose size is not exactly
/// what the header says, whose addresses are not increasing or whose names lie outside
/// the name bytes is not taken: the index is built again and the file rewritten.
final class SymbolIndexFile: @unchecked Sendable {
    static let entrySize = 24
    private let mapped: MappedFile
    private let entries: UnsafeRawBufferPointer
    private let names: UnsafeRawBufferPointer
    let count: Int
    let headerSize: Int

    private init?(mapped: MappedFile, header: [UInt8], count: Int, nameBytes: Int) {
        let bytes = mapped.bytes
        let entryBytes = count * SymbolIndexFile.entrySize
        guard bytes.count == header.count + entryBytes + nameBytes, bytes.starts(with: header) else { return nil }
        self.mapped = mapped
        self.count = count
        headerSize = header.count
        entries = UnsafeRawBufferPointer(rebasing: bytes[header.count ..< header.count + entryBytes])
        names = UnsafeRawBufferPointer(rebasing: bytes[(header.count + entryBytes)...])
        var previous: UInt64?
        for index in 0..<count {
            let address = address(at: index)
            let (offset, length) = nameRange(at: index)
            guard previous.map({ $0 < address }) ?? true, offset + length <= names.count else { return nil }
            previous = address
        }
    }

    func address(at index: Int) -> UInt64 {
        entries.loadUnaligned(fromByteOffset: index * SymbolIndexFile.entrySize, as: UInt64.self)
    }

    func size(at index: Int) -> UInt64 {
        entries.loadUnaligned(fromByteOffset: index * SymbolIndexFile.entrySize + 8, as: UInt64.self)
    }

    private func nameRange(at index: Int) -> (offset: Int, length: Int) {
        let base = index * SymbolIndexFile.entrySize
        return (Int(entries.loadUnaligned(fromByteOffset: base + 16, as: UInt32.self)),
                Int(entries.loadUnaligned(fromByteOffset: base + 20, as: UInt32.self)))
    }

    func function(at index: Int) -> SymbolIndex.Function {
        let (offset, length) = nameRange(at: index)
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: names[offset ..< offset + length]), as: UTF8.self)
        return SymbolIndex.Function(address: address(at: index), size: size(at: index), name: name)
    }

    /// The stored index of `elf` (with `debugFile`), nil when there is none or it is not valid.
    static func load(from directory: CacheDirectory, elf: ELFFile, debugFile: ELFFile?) -> SymbolIndexFile? {
        // The counts are in the header; read them from the file, then check the whole header.
        guard let name = fileName(elf), let mapped = directory.map(name),
              let counts = CacheFileHeader.storedCounts(in: mapped.bytes), counts.count == 2 else { return nil }
        let (count, nameBytes) = (counts[0], counts[1])
        guard count <= mapped.bytes.count / entrySize else { return nil }
        let header = self.header(elf: elf, debugFile: debugFile, count: count, nameBytes: nameBytes)
        return SymbolIndexFile(mapped: mapped, header: header, count: count, nameBytes: nameBytes)
    }

    /// Writes the index of `elf` (best effort).
    static func store(_ functions: [SymbolIndex.Function], in directory: CacheDirectory, elf: ELFFile, debugFile: ELFFile?) {
        guard let name = fileName(elf), directory.path != nil else { return }
        var entries = [UInt8]()
        entries.reserveCapacity(functions.count * entrySize)
        var names = [UInt8]()
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { entries.append(contentsOf: $0) } }
        for function in functions {
            let utf8 = Array(function.name.utf8)
            guard names.count + utf8.count <= Int(UInt32.max) else { return }
            append(function.address)
            append(function.size)
            append(UInt32(names.count))
            append(UInt32(utf8.count))
            names += utf8
        }
        let header = self.header(elf: elf, debugFile: debugFile, count: functions.count, nameBytes: names.count)
        header.withUnsafeBytes { header in
            entries.withUnsafeBytes { entries in
                names.withUnsafeBytes { names in directory.store(name, parts: [header, entries, names]) }
            }
        }
    }

    private static func fileName(_ elf: ELFFile) -> String? { CacheFileHeader.fileName(of: elf, kind: "symbols") }

    private static func header(elf: ELFFile, debugFile: ELFFile?, count: Int, nameBytes: Int) -> [UInt8] {
        CacheFileHeader.bytes("pytap symbol index 1\n\(elf.buildIDHex ?? "")\n\(CacheFileHeader.identity(elf))\n"
            + "\(CacheFileHeader.identity(debugFile))\n\(count) \(nameBytes)\n")
    }
}
