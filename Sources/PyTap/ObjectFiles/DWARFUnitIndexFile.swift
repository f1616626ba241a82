/// What `SourceLineIndex` sets up per debug file before its first lookup, kept on disk
/// (`CacheDirectory`, `<build-id>-dwarf-units`): every unit header of `.debug_info` and
/// `.debug_types` (of the file and its dwz supplementary file) and the compile units' address
/// ranges from `.debug_aranges` and root DIEs. A later pytap maps it instead of walking every
/// unit header of the (large) sections and decoding the root DIE of each unit
/// `.debug_aranges` leaves out (~12% of a warm `dump --native`).
///
/// Layout: a text header padded to 16 bytes (format version, build-id, size and
/// modification time of the file and of its supplementary file, the sizes of their unit
/// sections, unit and range counts), then 12 little-endian 64-bit words per unit, 3 per
/// range, and their checksum (`ChecksummedWords`). The file is untrusted input: one
/// whose header differs in anything, whose size is not exactly the header's, whose checksum
/// does not match, or whose units or ranges are not well formed (inside their section, in
/// offset order, not overlapping; ranges sorted and naming a unit) is not taken: the set-up
/// is done again from the DWARF and the file rewritten.
enum DWARFUnitIndexFile {
    static let unitWords = 12
    static let rangeWords = 3

    typealias UnitRange = (low: UInt64, high: UInt64, unit: Int)

    /// The stored units and ranges of `elf` (with `supplementary`), nil when there are none
    /// or they are not valid for `objects` (the file's DWARF sections).
    static func load(from directory: CacheDirectory, elf: ELFFile, supplementary: ELFFile?,
                     objects: [DWARFObject]) -> (units: [DWARFUnit], ranges: [UnitRange])? {
        guard let name = fileName(elf), let mapped = directory.map(name),
              let counts = CacheFileHeader.storedCounts(in: mapped.bytes), counts.count == 2 else { return nil }
        // `words` points into the mapping: it must outlive every read below.
        defer { withExtendedLifetime(mapped) {} }
        let (unitCount, rangeCount) = (counts[0], counts[1])
        guard unitCount <= mapped.bytes.count / (8 * unitWords), rangeCount <= mapped.bytes.count / (8 * rangeWords) else { return nil }
        let header = self.header(elf: elf, supplementary: supplementary, objects: objects, units: unitCount, ranges: rangeCount)
        let wordCount = unitCount * unitWords + rangeCount * rangeWords
        guard let words = ChecksummedWords.words(in: mapped.bytes, header: header, count: wordCount) else { return nil }
        func word(_ index: Int) -> UInt64 { UInt64(littleEndian: words.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self)) }
        var units = [DWARFUnit]()
        units.reserveCapacity(unitCount)
        // Where the last unit of each (object, section) ended: objects are at most 2.
        var previousEnd = [0, 0, 0, 0]
        for index in 0..<unitCount {
            let base = index * unitWords
            guard let unit = unit(from: { word(base + $0) }, objects: objects) else { return nil }
            // Units of one section in offset order, not overlapping (what the section walk gives).
            let slot = unit.object * 2 + (unit.section == .types ? 1 : 0)
            guard unit.offset >= previousEnd[slot] else { return nil }
            previousEnd[slot] = unit.end
            units.append(unit)
        }
        var ranges = [UnitRange]()
        ranges.reserveCapacity(rangeCount)
        for index in 0..<rangeCount {
            let base = unitCount * unitWords + index * rangeWords
            let (low, high, unit) = (word(base), word(base + 1), word(base + 2))
            guard low < high, unit < UInt64(unitCount), ranges.last.map({ $0.low <= low }) ?? true else { return nil }
            ranges.append((low, high, Int(unit)))
        }
        return (units, ranges)
    }

    /// Writes the units and ranges of `elf` (best effort).
    static func store(units: [DWARFUnit], ranges: [UnitRange], in directory: CacheDirectory, elf: ELFFile,
                      supplementary: ELFFile?, objects: [DWARFObject]) {
        guard let name = fileName(elf), directory.path != nil else { return }
        var words = [UInt64]()
        words.reserveCapacity(units.count * unitWords + ranges.count * rangeWords + 1)
        for unit in units { words += fields(of: unit) }
        for range in ranges { words += [range.low, range.high, UInt64(range.unit)] }
        let header = self.header(elf: elf, supplementary: supplementary, objects: objects, units: units.count, ranges: ranges.count)
        ChecksummedWords.store(words, header: header, as: name, in: directory)
    }

    private static func fields(of unit: DWARFUnit) -> [UInt64] {
        [UInt64(unit.object), unit.section == .types ? 1 : 0, UInt64(unit.offset), UInt64(unit.end), UInt64(unit.version),
         UInt64(unit.unitType), UInt64(unit.addressSize), UInt64(unit.offsetSize), UInt64(unit.abbreviationOffset),
         UInt64(unit.firstDIEOffset), unit.typeSignature, UInt64(unit.typeOffset)]
    }

    /// A unit header from its stored fields (`field(0..<unitWords)`), when they describe one
    /// `DWARFUnit.parseHeaders` could have read from `objects`.
    private static func unit(from field: (Int) -> UInt64, objects: [DWARFObject]) -> DWARFUnit? {
        let limit = UInt64(Int32.max) * 16
        let fields = (field(0), field(1), field(2), field(3), field(4), field(5), field(6), field(7), field(8), field(9),
                      field(10), field(11))
        guard fields.0 < UInt64(objects.count), fields.1 <= 1, (2...5).contains(fields.4), fields.5 <= UInt64(UInt8.max),
              fields.6 == 1 || fields.6 == 2 || fields.6 == 4 || fields.6 == 8, fields.7 == 4 || fields.7 == 8,
              fields.8 <= limit, fields.11 <= limit else { return nil }
        let object = Int(fields.0)
        let section: DWARFSectionKind = fields.1 == 1 ? .types : .info
        let size = UInt64(objects[object].unitSection(section).count)
        let (offset, end, firstDIE) = (fields.2, fields.3, fields.9)
        guard offset < firstDIE, firstDIE <= end, end <= size else { return nil }
        return DWARFUnit(object: object, section: section, offset: Int(offset), end: Int(end), version: Int(fields.4),
                         unitType: UInt8(fields.5), addressSize: Int(fields.6), offsetSize: Int(fields.7),
                         abbreviationOffset: Int(fields.8), firstDIEOffset: Int(firstDIE), typeSignature: fields.10,
                         typeOffset: Int(fields.11))
    }

    private static func fileName(_ elf: ELFFile) -> String? { CacheFileHeader.fileName(of: elf, kind: "dwarf-units") }

    private static func header(elf: ELFFile, supplementary: ELFFile?, objects: [DWARFObject], units: Int, ranges: Int) -> [UInt8] {
        let sections = objects.map { "\($0.info.count) \($0.types.count)" }.joined(separator: " ")
        return CacheFileHeader.bytes("pytap dwarf units 2\n\(elf.buildIDHex ?? "")\n\(CacheFileHeader.identity(elf))\n"
            + "\(CacheFileHeader.identity(supplementary))\n\(sections)\n\(units) \(ranges)\n")
    }
}
