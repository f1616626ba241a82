/// An attribute value as stored, not yet interpreted: what it means (a constant, a
/// reference, a string offset…) depends on the form, which is kept. Plain data, so DIEs
/// can be decoded without allocating.
struct DWARFAttributeValue {
    /// The form actually used (DW_FORM_indirect already followed).
    var form: UInt64
    /// Constants, offsets, indices, signatures, flags; the length for blocks and exprlocs.
    /// Signed forms (sdata, implicit_const) hold the bit pattern of the Int64.
    var value: UInt64
    /// Where inline strings, blocks and exprlocs start in the unit's section.
    var dataOffset: Int
}

/// Decoding and skipping attribute values by form (DWARF 5 section 7.5.6).
enum DWARFForms {
    /// The size of a form's value when the unit header alone decides it;
    /// `DWARFAttributeSpec.variableSize` when it is encoded in the value,
    /// `DWARFAttributeSpec.unknownForm` when the form is not known.
    static func fixedSize(of form: UInt64, version: Int, addressSize: Int, offsetSize: Int) -> Int {
        typealias F = DWARFConstant.Form
        switch form {
        case F.flagPresent, F.implicitConst: return 0
        case F.data1, F.ref1, F.flag, F.strx1, F.addrx1: return 1
        case F.data2, F.ref2, F.strx2, F.addrx2: return 2
        case F.strx3, F.addrx3: return 3
        case F.data4, F.ref4, F.refSup4, F.strx4, F.addrx4: return 4
        case F.data8, F.ref8, F.refSig8, F.refSup8: return 8
        case F.data16: return 16
        case F.addr: return addressSize
        case F.strp, F.lineStrp, F.secOffset, F.strpSup, F.gnuRefAlt, F.gnuStrpAlt: return offsetSize
        // DWARF 2 sized ref_addr like an address; DWARF 3 made it an offset.
        case F.refAddr: return version <= 2 ? addressSize : offsetSize
        case F.string, F.block, F.block1, F.block2, F.block4, F.exprloc, F.sdata, F.udata, F.refUdata, F.strx,
             F.addrx, F.loclistx, F.rnglistx, F.gnuAddrIndex, F.gnuStrIndex, F.indirect:
            return DWARFAttributeSpec.variableSize
        default: return DWARFAttributeSpec.unknownForm
        }
    }

    /// Moves past a value of `form` without decoding it.
    static func skip(_ form: UInt64, _ cursor: inout DWARFCursor, _ unit: DWARFUnit) throws {
        typealias F = DWARFConstant.Form
        let size = fixedSize(of: form, version: unit.version, addressSize: unit.addressSize, offsetSize: unit.offsetSize)
        if size >= 0 {
            try cursor.skip(size)
            return
        }
        switch form {
        case F.string: try cursor.skipCString()
        case F.block, F.exprloc: try cursor.skip(try cursor.uleb128())
        case F.block1: try cursor.skip(Int(try cursor.u8()))
        case F.block2: try cursor.skip(Int(try cursor.u16()))
        case F.block4: try cursor.skip(UInt64(try cursor.u32()))
        case F.sdata: _ = try cursor.sleb128()
        case F.udata, F.refUdata, F.strx, F.addrx, F.loclistx, F.rnglistx, F.gnuAddrIndex, F.gnuStrIndex:
            _ = try cursor.uleb128()
        case F.indirect:
            _ = try read(DWARFAttributeSpec(attribute: 0, form: form, implicitConst: 0, fixedSize: size), &cursor, unit)
        default:
            throw DWARFError.unsupportedForm(form: form, section: cursor.section.name, offset: cursor.offset)
        }
    }

    /// Decodes one attribute value.
    static func read(_ spec: DWARFAttributeSpec, _ cursor: inout DWARFCursor, _ unit: DWARFUnit) throws -> DWARFAttributeValue {
        typealias F = DWARFConstant.Form
        var form = spec.form
        if form == F.indirect {
            form = try cursor.uleb128()
            // An indirect form naming itself or implicit_const (whose value lives in the abbreviation) is meaningless.
            guard form != F.indirect, form != F.implicitConst else {
                throw DWARFError.malformed("DW_FORM_indirect to form 0x\(String(form, radix: 16)) at \(cursor.section.name)+0x\(String(cursor.offset, radix: 16))")
            }
        }
        let start = cursor.offset
        var value: UInt64 = 0
        switch form {
        case F.addr: value = try cursor.unsigned(size: unit.addressSize)
        case F.data1, F.ref1, F.flag, F.strx1, F.addrx1: value = UInt64(try cursor.u8())
        case F.data2, F.ref2, F.strx2, F.addrx2: value = UInt64(try cursor.u16())
        case F.strx3, F.addrx3: value = try cursor.unsigned(size: 3)
        case F.data4, F.ref4, F.refSup4, F.strx4, F.addrx4: value = UInt64(try cursor.u32())
        case F.data8, F.ref8, F.refSig8, F.refSup8: value = try cursor.u64()
        case F.data16: try cursor.skip(16)
        case F.strp, F.lineStrp, F.secOffset, F.strpSup, F.gnuRefAlt, F.gnuStrpAlt:
            value = try cursor.sectionOffset(size: unit.offsetSize)
        case F.refAddr:
            value = unit.version <= 2 ? try cursor.unsigned(size: unit.addressSize) : try cursor.sectionOffset(size: unit.offsetSize)
        case F.sdata: value = UInt64(bitPattern: try cursor.sleb128())
        case F.udata, F.refUdata, F.strx, F.addrx, F.loclistx, F.rnglistx, F.gnuAddrIndex, F.gnuStrIndex:
            value = try cursor.uleb128()
        case F.implicitConst: value = UInt64(bitPattern: spec.implicitConst)
        case F.flagPresent: value = 1
        case F.string:
            try cursor.skipCString()
            value = UInt64(cursor.offset - start - 1)
        case F.block, F.exprloc:
            value = try cursor.uleb128()
            return try block(form: form, length: value, &cursor)
        case F.block1:
            value = UInt64(try cursor.u8())
            return try block(form: form, length: value, &cursor)
        case F.block2:
            value = UInt64(try cursor.u16())
            return try block(form: form, length: value, &cursor)
        case F.block4:
            value = UInt64(try cursor.u32())
            return try block(form: form, length: value, &cursor)
        default:
            throw DWARFError.unsupportedForm(form: form, section: cursor.section.name, offset: start)
        }
        return DWARFAttributeValue(form: form, value: value, dataOffset: start)
    }

    private static func block(form: UInt64, length: UInt64, _ cursor: inout DWARFCursor) throws -> DWARFAttributeValue {
        let start = cursor.offset
        try cursor.skip(length)
        return DWARFAttributeValue(form: form, value: length, dataOffset: start)
    }

    /// The value as an integer constant, for the constant forms; nil for others.
    /// data1…data8 are zero-extended: only the context (e.g. an enum's underlying type) says whether they are signed.
    static func constant(_ value: DWARFAttributeValue) -> Int64? {
        typealias F = DWARFConstant.Form
        switch value.form {
        case F.data1, F.data2, F.data4, F.data8, F.udata: return Int64(bitPattern: value.value)
        case F.sdata, F.implicitConst: return Int64(bitPattern: value.value)
        default: return nil
        }
    }

    /// Byte width of the fixed-size data forms, for sign extension; nil for the others.
    static func dataWidth(_ form: UInt64) -> Int? {
        typealias F = DWARFConstant.Form
        switch form {
        case F.data1: return 1
        case F.data2: return 2
        case F.data4: return 4
        case F.data8: return 8
        default: return nil
        }
    }

    static func isBlock(_ form: UInt64) -> Bool {
        typealias F = DWARFConstant.Form
        return form == F.exprloc || form == F.block || form == F.block1 || form == F.block2 || form == F.block4
    }
}
