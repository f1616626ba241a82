/// `SourceLineUnitTable`s kept on disk (`CacheDirectory`, `<build-id>-line-unit-<unit>`), one
/// file per compile unit a lookup hit: a warm `dump --native` maps the tables of the units
/// its pcs fall in instead of decoding their DIEs and running their line programs (~30% of
/// its CPU before).
///
/// Layout: a text header padded to 16 bytes (format version, build-id, size and
/// modification time of the file and of its supplementary file, the unit's index and
/// offset, the word count), then the table's little-endian 64-bit words and their 64-bit
/// FNV-1a checksum. A file whose header differs in anything, whose size is not exactly the
/// header's, whose checksum does not match or whose words are not a well-formed table is
/// not taken: the unit is read from the DWARF again and the file rewritten.
enum SourceLineUnitTableFile {
    struct Key {
        var elf: ELFFile
        var supplementary: ELFFile?
        var unit: Int
        var unitOffset: Int
    }

    static func load(from directory: CacheDirectory, _ key: Key) -> SourceLineUnitTable? {
        guard let name = fileName(key), let mapped = directory.map(name) else { return nil }
        let bytes = mapped.bytes
        guard let end = bytes.prefix(4096).firstIndex(of: 0) else { return nil }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<end]), as: UTF8.self)
        guard let countText = text.split(separator: "\n").last, let wordCount = Int(countText),
              wordCount >= 0, wordCount < bytes.count / 8 else { return nil }
        let header = self.header(key, words: wordCount)
        guard bytes.count == header.count + 8 * (wordCount + 1), bytes.starts(with: header) else { return nil }
        let words = UnsafeRawBufferPointer(rebasing: bytes[header.count ..< header.count + 8 * wordCount])
        let stored = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: header.count + 8 * wordCount, as: UInt64.self))
        let checksum = DWARFUnitIndexFile.checksum((0..<wordCount).lazy.map {
            UInt64(littleEndian: words.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))
        })
        guard checksum == stored else { return nil }
        return SourceLineUnitTable(words: words)
    }

    /// Writes a unit's table (best effort).
    static func store(_ table: SourceLineUnitTable, in directory: CacheDirectory, _ key: Key) {
        guard let name = fileName(key), directory.path != nil else { return }
        var words = table.encoded()
        let header = self.header(key, words: words.count)
        words.append(DWARFUnitIndexFile.checksum(words))
        let littleEndian = words.map(\.littleEndian)
        header.withUnsafeBytes { header in
            littleEndian.withUnsafeBytes { words in directory.store(name, parts: [header, words]) }
        }
    }

    private static func fileName(_ key: Key) -> String? {
        guard let id = key.elf.buildIDHex, !id.isEmpty else { return nil }
        return "\(id)-line-unit-\(key.unit)"
    }

    private static func header(_ key: Key, words: Int) -> [UInt8] {
        let text = "pytap line unit 1\n\(key.elf.buildIDHex ?? "")\n\(SymbolIndexFile.identity(key.elf))\n"
            + "\(SymbolIndexFile.identity(key.supplementary))\n\(key.unit) \(key.unitOffset)\n\(words)\n"
        var bytes = Array(text.utf8)
        bytes.append(0)
        while bytes.count % 16 != 0 { bytes.append(0) }
        return bytes
    }
}
