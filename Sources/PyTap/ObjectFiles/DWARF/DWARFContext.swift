/// Everything needed to decode DIEs anywhere: the main file's sections and, when present,
/// the dwz supplementary file's; every unit header; the decoded abbreviation tables. It
/// decodes single DIEs, walks children, follows references and reads strings. A `lazy`
/// context decodes a unit's abbreviation table and root attributes on first use, for
/// readers that look at a few units of a large file (`SourceLineIndex`).
final class DWARFContext {
    /// objects[0] is the main file; objects[1], when present, its supplementary file.
    let objects: [DWARFObject]
    /// Why the supplementary file is absent although the main file names one (for errors).
    let supplementaryNote: String?
    private(set) var units: [DWARFUnit] = []
    /// Decoded abbreviation tables (nil: not yet, in a lazy context), by `DWARFUnit.abbreviationTable`.
    private var abbreviationTables: [DWARFAbbreviationTable?] = []
    /// Where each table is and how to decode it (the version of the first unit using it).
    private var abbreviationKeys: [(key: TableKey, version: Int)] = []
    /// Whether a unit's root attributes (`strOffsetsBase`, `language`) are read.
    private var rootRead: [Bool] = []
    /// For each (object, section): unit indices in offset order, to find the unit holding an offset.
    private var unitsBySection: [[Int]] = [[], [], [], []]
    private var typeUnitsBySignature: [UInt64: Int] = [:]
    /// The abbreviation tables found so far, by what decoding them depends on.
    private var tableIndexes: [TableKey: Int] = [:]

    /// What decoding an abbreviation table depends on (form sizes): units share a decoded
    /// table only when they agree.
    private struct TableKey: Hashable {
        var object: Int, offset: Int, version2: Bool, addressSize: Int, offsetSize: Int
    }

    /// `headers`: the unit headers when already known (`DWARFUnitIndexFile`), in the order
    /// the sections give them; else every header is read from the sections.
    init(main: DWARFObject, supplementary: DWARFObject?, supplementaryNote: String?, lazy: Bool = false,
         headers: [DWARFUnit]? = nil) throws {
        objects = supplementary.map { [main, $0] } ?? [main]
        self.supplementaryNote = supplementaryNote
        var headers = headers ?? []
        if headers.isEmpty {
            for (objectIndex, object) in objects.enumerated() {
                for section in [object.info, object.types] where section.count > 0 {
                    headers += try DWARFUnit.parseHeaders(of: section, object: objectIndex)
                }
            }
        }
        units.reserveCapacity(headers.count)
        for var unit in headers {
            // A lazy context finds a unit's table on the unit's first use (a few of thousands).
            unit.abbreviationTable = DWARFUnit.tableNotYetFound
            let index = units.count
            units.append(unit)
            if !lazy { _ = try abbreviationTable(ofUnit: index) }
            unitsBySection[Self.sectionSlot(object: unit.object, section: unit.section)].append(index)
            if unit.unitType == DWARFConstant.UnitType.type, typeUnitsBySignature[unit.typeSignature] == nil {
                typeUnitsBySignature[unit.typeSignature] = index
            }
        }
        rootRead = Array(repeating: false, count: units.count)
        if !lazy {
            for index in units.indices { try readRootAttributes(of: index) }
        }
    }

    /// The abbreviation table of a unit, decoded now if it was not yet; units agreeing on
    /// its `TableKey` share one.
    func abbreviationTable(ofUnit unitIndex: Int) throws -> DWARFAbbreviationTable {
        var table = units[unitIndex].abbreviationTable
        if table == DWARFUnit.tableNotYetFound {
            let unit = units[unitIndex]
            let key = TableKey(object: unit.object, offset: unit.abbreviationOffset, version2: unit.version <= 2,
                               addressSize: unit.addressSize, offsetSize: unit.offsetSize)
            if let known = tableIndexes[key] {
                table = known
            } else {
                abbreviationKeys.append((key, unit.version))
                abbreviationTables.append(nil)
                table = abbreviationTables.count - 1
                tableIndexes[key] = table
            }
            units[unitIndex].abbreviationTable = table
        }
        return try abbreviationTable(table)
    }

    /// A decoded abbreviation table, decoded now if it was not yet.
    func abbreviationTable(_ index: Int) throws -> DWARFAbbreviationTable {
        if let table = abbreviationTables[index] { return table }
        let (key, version) = abbreviationKeys[index]
        let table = try DWARFAbbreviationTable(section: objects[key.object].abbrev, offset: key.offset, version: version,
                                               addressSize: key.addressSize, offsetSize: key.offsetSize)
        abbreviationTables[index] = table
        return table
    }

    /// How many abbreviation tables are decoded (a lazy context decodes only those it used).
    var decodedAbbreviationTables: Int { abbreviationTables.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    /// A unit with its root attributes read (what reading its strings needs).
    func unitWithRoot(_ index: Int) throws -> DWARFUnit {
        if !rootRead[index] { try readRootAttributes(of: index) }
        return units[index]
    }

    /// The index of the .debug_info unit of the main file whose header is at `offset`.
    func infoUnit(atOffset offset: Int) -> Int? {
        let candidates = unitsBySection[Self.sectionSlot(object: 0, section: .info)]
        guard offset >= 0, let position = candidates.lastIndex(withKeyAtMost: UInt64(offset), key: { UInt64(self.units[$0].offset) }),
              units[candidates[position]].offset == offset else { return nil }
        return candidates[position]
    }

    private static func sectionSlot(object: Int, section: DWARFSectionKind) -> Int {
        object * 2 + (section == .types ? 1 : 0)
    }

    /// str_offsets_base and the language come from the root DIE; strx names of every other DIE need the former.
    private func readRootAttributes(of index: Int) throws {
        rootRead[index] = true
        var unit = units[index]
        // DWARF 5 says the base is required when strx is used; without it, assume the table right after a v5 header.
        unit.strOffsetsBase = unit.version >= 5 ? (unit.offsetSize == 8 ? 16 : 8) : 0
        if unit.firstDIEOffset < unit.end {
            let root = try readDIE(DWARFDIEReference(unit: index, offset: unit.firstDIEOffset))
            if let base = root.value(DWARFConstant.Attribute.strOffsetsBase), base.value <= UInt64(Int32.max) * 16 {
                unit.strOffsetsBase = Int(base.value)
            }
            unit.language = root.value(DWARFConstant.Attribute.language)?.value ?? 0
        }
        // Only these two: reading the root found the unit's abbreviation table meanwhile.
        units[index].strOffsetsBase = unit.strOffsetsBase
        units[index].language = unit.language
    }

    func section(of unit: DWARFUnit) -> DWARFSectionData {
        objects[unit.object].unitSection(unit.section)
    }

    // MARK: DIEs

    func readDIE(_ reference: DWARFDIEReference) throws -> DWARFDIE {
        guard reference.unit >= 0, reference.unit < units.count else {
            throw DWARFError.malformed("DIE reference to unit \(reference.unit)")
        }
        let unit = units[reference.unit]
        let data = section(of: unit)
        guard reference.offset >= unit.firstDIEOffset, reference.offset < unit.end else {
            throw DWARFError.malformed("DIE offset 0x\(String(reference.offset, radix: 16)) outside its unit in \(data.kind.name)")
        }
        let table = try abbreviationTable(ofUnit: reference.unit)
        var cursor = data.cursor(at: reference.offset, end: unit.end)
        let code = try cursor.uleb128()
        guard let abbreviation = table.abbreviation(for: code) else {
            throw DWARFError.malformed("unknown abbreviation \(code) at \(data.kind.name)+0x\(String(reference.offset, radix: 16))")
        }
        var attributes: [DWARFAttribute] = []
        attributes.reserveCapacity(abbreviation.attributeCount)
        for index in abbreviation.firstAttribute..<(abbreviation.firstAttribute + abbreviation.attributeCount) {
            let spec = table.attributes[index]
            attributes.append(DWARFAttribute(name: spec.attribute, value: try DWARFForms.read(spec, &cursor, unit)))
        }
        return DWARFDIE(reference: reference, tag: abbreviation.tag, hasChildren: abbreviation.hasChildren,
                        attributes: attributes, childrenOffset: cursor.offset)
    }

    /// Calls `body` for each child of `die` in order, until it returns true.
    func forEachChild(of die: DWARFDIE, _ body: (DWARFDIE) throws -> Bool) throws {
        guard die.hasChildren else { return }
        let unit = units[die.unit]
        let data = section(of: unit)
        var offset = die.childrenOffset
        while true {
            var cursor = data.cursor(at: offset, end: unit.end)
            if try cursor.uleb128() == 0 { return }
            let child = try readDIE(DWARFDIEReference(unit: die.unit, offset: offset))
            if try body(child) { return }
            offset = try nextSibling(of: child)
        }
    }

    /// Like `forEachChild`, but childless children whose tag `wanted` refuses are skipped
    /// without being decoded (the variables, parameters and labels of a function body).
    func forEachChild(of die: DWARFDIE, wanted: (UInt64) -> Bool, _ body: (DWARFDIE) throws -> Bool) throws {
        guard die.hasChildren else { return }
        let unit = units[die.unit]
        let data = section(of: unit)
        let table = try abbreviationTable(ofUnit: die.unit)
        var offset = die.childrenOffset
        while true {
            var cursor = data.cursor(at: offset, end: unit.end)
            let code = try cursor.uleb128()
            if code == 0 { return }
            if let abbreviation = table.abbreviation(for: code), !abbreviation.hasChildren, !wanted(abbreviation.tag) {
                try skipAttributes(of: abbreviation, table: table, &cursor, unit)
                offset = cursor.offset
                continue
            }
            let child = try readDIE(DWARFDIEReference(unit: die.unit, offset: offset))
            if try body(child) { return }
            offset = try nextSibling(of: child)
        }
    }

    /// The offset of the DIE after `die` and its subtree.
    func nextSibling(of die: DWARFDIE) throws -> Int {
        guard die.hasChildren else { return die.childrenOffset }
        let unit = units[die.unit]
        if let sibling = die.value(DWARFConstant.Attribute.sibling), let target = siblingTarget(sibling, unit: unit),
           target > die.offset {
            return target
        }
        // No usable DW_AT_sibling (Clang never emits it): walk the subtree.
        let table = try abbreviationTable(ofUnit: die.unit)
        var cursor = section(of: unit).cursor(at: die.childrenOffset, end: unit.end)
        var depth = 1
        while depth > 0 {
            let code = try cursor.uleb128()
            if code == 0 {
                depth -= 1
                continue
            }
            guard let abbreviation = table.abbreviation(for: code) else {
                throw DWARFError.malformed("unknown abbreviation \(code) at \(cursor.section.name)+0x\(String(cursor.offset, radix: 16))")
            }
            try skipAttributes(of: abbreviation, table: table, &cursor, unit)
            if abbreviation.hasChildren { depth += 1 }
        }
        return cursor.offset
    }

    func skipAttributes(of abbreviation: DWARFAbbreviation, table: DWARFAbbreviationTable,
                        _ cursor: inout DWARFCursor, _ unit: DWARFUnit) throws {
        if abbreviation.fixedSize >= 0 {
            try cursor.skip(abbreviation.fixedSize)
            return
        }
        for index in abbreviation.firstAttribute..<(abbreviation.firstAttribute + abbreviation.attributeCount) {
            let spec = table.attributes[index]
            if spec.fixedSize >= 0 {
                try cursor.skip(spec.fixedSize)
            } else {
                try DWARFForms.skip(spec.form, &cursor, unit)
            }
        }
    }

    /// The section offset a DW_AT_sibling value points to, when it is a unit-local reference
    /// inside the unit (the only kind compilers emit); nil otherwise.
    func siblingTarget(_ value: DWARFAttributeValue, unit: DWARFUnit) -> Int? {
        typealias F = DWARFConstant.Form
        switch value.form {
        case F.ref1, F.ref2, F.ref4, F.ref8, F.refUdata:
            guard value.value < UInt64(unit.end - unit.offset) else { return nil }
            let target = unit.offset + Int(value.value)
            return target >= unit.firstDIEOffset ? target : nil
        default:
            return nil
        }
    }

    // MARK: References

    /// The DIE a reference-class attribute points to.
    func reference(_ value: DWARFAttributeValue, from unitIndex: Int) throws -> DWARFDIEReference {
        typealias F = DWARFConstant.Form
        let unit = units[unitIndex]
        switch value.form {
        case F.ref1, F.ref2, F.ref4, F.ref8, F.refUdata:
            guard value.value < UInt64(unit.end - unit.offset), unit.offset + Int(value.value) >= unit.firstDIEOffset else {
                throw DWARFError.malformed("reference 0x\(String(value.value, radix: 16)) outside its unit at \(unit.section.name)+0x\(String(unit.offset, radix: 16))")
            }
            return DWARFDIEReference(unit: unitIndex, offset: unit.offset + Int(value.value))
        case F.refAddr:
            return try locate(value.value, object: unit.object)
        case F.gnuRefAlt, F.refSup4, F.refSup8:
            guard objects.count > 1 else {
                throw DWARFError.supplementaryFileMissing(supplementaryNote ?? "a DIE refers to it, but the file names none")
            }
            return try locate(value.value, object: 1)
        case F.refSig8:
            guard let typeUnit = typeUnitsBySignature[value.value] else {
                throw DWARFError.malformed("no type unit with signature 0x\(String(value.value, radix: 16))")
            }
            let target = units[typeUnit]
            return DWARFDIEReference(unit: typeUnit, offset: target.offset + target.typeOffset)
        default:
            throw DWARFError.malformed("form 0x\(String(value.form, radix: 16)) is not a reference")
        }
    }

    /// The unit of .debug_info of `object` that holds section offset `offset`.
    private func locate(_ offset: UInt64, object: Int) throws -> DWARFDIEReference {
        let candidates = unitsBySection[Self.sectionSlot(object: object, section: .info)]
        guard offset <= UInt64(Int.max / 2) else { throw DWARFError.malformed("reference 0x\(String(offset, radix: 16)) out of range") }
        let target = Int(offset)
        var low = 0, high = candidates.count
        while low < high {
            let middle = (low + high) / 2
            if units[candidates[middle]].offset <= target { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { throw DWARFError.malformed("reference 0x\(String(target, radix: 16)) before the first unit") }
        let index = candidates[low - 1]
        let unit = units[index]
        guard target >= unit.firstDIEOffset, target < unit.end else {
            throw DWARFError.malformed("reference 0x\(String(target, radix: 16)) is not inside a unit's DIEs")
        }
        return DWARFDIEReference(unit: index, offset: target)
    }

    // MARK: Strings

    /// The section and offset of a string-class attribute's bytes; nil when the value is not
    /// a string or lives in a missing supplementary file.
    func stringLocation(_ value: DWARFAttributeValue, unit: DWARFUnit) throws -> (DWARFSectionData, Int)? {
        typealias F = DWARFConstant.Form
        let object = objects[unit.object]
        switch value.form {
        case F.string:
            return (object.unitSection(unit.section), value.dataOffset)
        case F.strp:
            return (object.str, try Self.checkedOffset(value.value))
        case F.lineStrp:
            return (object.lineStr, try Self.checkedOffset(value.value))
        case F.strx, F.strx1, F.strx2, F.strx3, F.strx4, F.gnuStrIndex:
            guard value.value < UInt64(Int32.max) else { throw DWARFError.malformed("string index \(value.value) too large") }
            let entry = unit.strOffsetsBase + Int(value.value) * unit.offsetSize
            var cursor = object.strOffsets.cursor(at: entry)
            return (object.str, try Self.checkedOffset(try cursor.sectionOffset(size: unit.offsetSize)))
        case F.gnuStrpAlt, F.strpSup:
            guard objects.count > 1 else { return nil }
            return (objects[1].str, try Self.checkedOffset(value.value))
        default:
            return nil
        }
    }

    private static func checkedOffset(_ value: UInt64) throws -> Int {
        guard value <= UInt64(Int.max / 2) else { throw DWARFError.malformed("string offset 0x\(String(value, radix: 16)) out of range") }
        return Int(value)
    }

    /// The bytes of a NUL-terminated string, without the NUL.
    func stringBytes(_ data: DWARFSectionData, at offset: Int) throws -> UnsafeRawBufferPointer {
        let bytes = data.bytes
        guard offset >= 0, offset < bytes.count else { throw DWARFError.truncated(section: data.kind.name, offset: offset) }
        var end = offset
        while end < bytes.count && bytes[end] != 0 { end += 1 }
        guard end < bytes.count else { throw DWARFError.truncated(section: data.kind.name, offset: end) }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
    }

    func string(_ value: DWARFAttributeValue, unit: Int) throws -> String? {
        guard let (data, offset) = try stringLocation(value, unit: try unitWithRoot(unit)) else { return nil }
        return String(decoding: try stringBytes(data, at: offset), as: UTF8.self)
    }

    /// The DIE's DW_AT_name, decoded.
    func name(of die: DWARFDIE) throws -> String? {
        guard let value = die.value(DWARFConstant.Attribute.name) else { return nil }
        return try string(value, unit: die.unit)
    }

    /// Whether the DIE's DW_AT_name is `wanted`, without building a String.
    func nameEquals(_ die: DWARFDIE, _ wanted: [UInt8]) throws -> Bool {
        guard let value = die.value(DWARFConstant.Attribute.name),
              let (data, offset) = try stringLocation(value, unit: try unitWithRoot(die.unit)) else { return false }
        return try stringBytes(data, at: offset).elementsEqual(wanted)
    }

    /// The bytes of a block or exprloc attribute.
    func blockBytes(_ value: DWARFAttributeValue, unit: Int) throws -> UnsafeRawBufferPointer {
        let data = section(of: units[unit])
        guard value.dataOffset >= 0, value.value <= UInt64(data.count), value.dataOffset <= data.count - Int(value.value) else {
            throw DWARFError.truncated(section: data.kind.name, offset: value.dataOffset)
        }
        return UnsafeRawBufferPointer(rebasing: data.bytes[value.dataOffset..<(value.dataOffset + Int(value.value))])
    }
}
