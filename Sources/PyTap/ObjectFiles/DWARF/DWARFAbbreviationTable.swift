/// One attribute of an abbreviation: its name, form, the value of DW_FORM_implicit_const,
/// and its size in bytes when the form's size follows from the unit header alone.
struct DWARFAttributeSpec {
    var attribute: UInt64
    var form: UInt64
    var implicitConst: Int64
    /// >= 0: fixed size; `DWARFAttributeSpec.variableSize` or `.unknownForm` otherwise.
    var fixedSize: Int

    static let variableSize = -1
    static let unknownForm = -2
}

/// One abbreviation (a DIE shape). Plain data with no references, so copying it out of
/// the table in the scanning loop costs no reference counting.
struct DWARFAbbreviation {
    var tag: UInt64
    var hasChildren: Bool
    /// Range of this abbreviation's attributes in `DWARFAbbreviationTable.attributes`.
    var firstAttribute: Int
    var attributeCount: Int
    /// Total size of the attributes when every one has a fixed size, else -1: such DIEs
    /// are skipped with one addition.
    var fixedSize: Int
    /// Offset of DW_AT_sibling from the start of the attributes when every attribute before
    /// it has a fixed size, else -1: subtrees are then skipped without decoding the DIE.
    var siblingOffset: Int
    var siblingForm: UInt64
}

/// The abbreviations of one .debug_abbrev table, decoded for units of a given address
/// size, offset size and version (they fix the sizes of addr, strp and ref_addr forms).
struct DWARFAbbreviationTable {
    var attributes: [DWARFAttributeSpec] = []
    private var abbreviations: [DWARFAbbreviation] = []
    /// Abbreviation codes are usually 1...n: then `dense[code]` is the index, -1 if unused.
    private var dense: [Int32] = []
    private var sparse: [UInt64: Int] = [:]

    init(section: DWARFSectionData, offset: Int, version: Int, addressSize: Int, offsetSize: Int) throws {
        guard offset >= 0, offset < section.count else {
            throw DWARFError.malformed("abbreviation offset 0x\(String(offset, radix: 16)) outside \(section.kind.name)")
        }
        var cursor = section.cursor(at: offset)
        var codes: [UInt64] = []
        var maxCode: UInt64 = 0
        while true {
            let code = try cursor.uleb128()
            if code == 0 { break }
            let tag = try cursor.uleb128()
            let children = try cursor.u8()
            let first = attributes.count
            var total = 0
            var sibling = -1
            var siblingForm: UInt64 = 0
            while true {
                let attribute = try cursor.uleb128()
                let form = try cursor.uleb128()
                if attribute == 0 && form == 0 { break }
                var implicitConst: Int64 = 0
                if form == DWARFConstant.Form.implicitConst { implicitConst = try cursor.sleb128() }
                let size = DWARFForms.fixedSize(of: form, version: version, addressSize: addressSize, offsetSize: offsetSize)
                if attribute == DWARFConstant.Attribute.sibling && total >= 0 && sibling < 0 {
                    sibling = total
                    siblingForm = form
                }
                total = (total >= 0 && size >= 0) ? total + size : -1
                attributes.append(DWARFAttributeSpec(attribute: attribute, form: form, implicitConst: implicitConst, fixedSize: size))
            }
            codes.append(code)
            maxCode = max(maxCode, code)
            abbreviations.append(DWARFAbbreviation(tag: tag, hasChildren: children != 0, firstAttribute: first,
                                                   attributeCount: attributes.count - first, fixedSize: total,
                                                   siblingOffset: sibling, siblingForm: siblingForm))
        }
        // Compilers number abbreviations 1...n: index them directly then, else hash.
        // A code defined twice keeps its first definition.
        if maxCode <= UInt64(4 * abbreviations.count + 64) {
            dense = [Int32](repeating: -1, count: Int(maxCode) + 1)
            for (index, code) in codes.enumerated() where dense[Int(code)] < 0 { dense[Int(code)] = Int32(index) }
        } else {
            for (index, code) in codes.enumerated() where sparse[code] == nil { sparse[code] = index }
        }
    }

    /// For the indexer's hot loop: the table's arrays, read without a method call per DIE.
    var denseIndex: [Int32] { dense }
    var allAbbreviations: [DWARFAbbreviation] { abbreviations }

    func abbreviation(for code: UInt64) -> DWARFAbbreviation? {
        if !dense.isEmpty {
            guard code < UInt64(dense.count) else { return nil }
            let index = dense[Int(code)]
            return index >= 0 ? abbreviations[Int(index)] : nil
        }
        guard let index = sparse[code] else { return nil }
        return abbreviations[index]
    }
}
