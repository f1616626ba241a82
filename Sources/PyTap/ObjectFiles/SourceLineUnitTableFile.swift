/// `SourceLineUnitTable`s kept on disk (`CacheDirectory`, `<build-id>-line-unit-<unit>`), one
/// file per compile unit a lookup hit: a warm `dump --native` maps the tables of the units
/// its pcs fall in instead of decoding their DIEs and running their line programs (~30% of
/// its CPU before).
///
/// Layout: a text header padded to 16 bytes (format version, build-id, size and
/// modification time of the file and of its supplementary file, the unit's index and
/// offset, the word count), then the table's little-endian 64-bit words and their
/// checksum (`ChecksummedWords`). A file whose header differs in anything, whose size is not exactly the
/// header's, whose checksum does not match or whose words are not a well-formed table is
/// not taken: the unit is read from the DWARF again and the file rewritten.
enum SourceLineUnitTableFile {
    struct Key {
        var elf: ELFFile
        var supplementary: ELFFile?
        var unit: Int
        var unitOffset: Int
    }

    /// The stored table, answered in place from the mapping it keeps.
    static func load(from directory: CacheDirectory, _ key: Key) -> StoredSourceLineUnitTable? {
        guard let name = fileName(key), let mapped = directory.map(name),
              let counts = CacheFileHeader.storedCounts(in: mapped.bytes), counts.count == 1,
              let words = ChecksummedWords.words(in: mapped.bytes, header: header(key, words: counts[0]), count: counts[0])
        else { return nil }
        return StoredSourceLineUnitTable(words: words, owner: mapped)
    }

    /// Writes a unit's table (best effort).
    static func store(_ table: SourceLineUnitTable, in directory: CacheDirectory, _ key: Key) {
        guard let name = fileName(key), directory.path != nil else { return }
        let words = table.encoded()
        ChecksummedWords.store(words, header: header(key, words: words.count), as: name, in: directory)
    }

    private static func fileName(_ key: Key) -> String? {
        CacheFileHeader.fileName(of: key.elf, kind: "line-unit-\(key.unit)")
    }

    private static func header(_ key: Key, words: Int) -> [UInt8] {
        CacheFileHeader.bytes("pytap line unit 2\n\(key.elf.buildIDHex ?? "")\n\(CacheFileHeader.identity(key.elf))\n"
            + "\(CacheFileHeader.identity(key.supplementary))\n\(key.unit) \(key.unitOffset)\n\(words)\n")
    }
}
