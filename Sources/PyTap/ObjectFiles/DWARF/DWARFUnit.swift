/// A unit header (compile, partial or type unit) of .debug_info or .debug_types, plus the
/// few root-DIE attributes that affect how its DIEs are read.
struct DWARFUnit {
    /// 0: the main file; 1: its supplementary (dwz) file.
    var object: Int
    var section: DWARFSectionKind
    /// Offset of the unit header in its section; CU-relative references count from here.
    var offset: Int
    /// One past the unit's last byte.
    var end: Int
    var version: Int
    var unitType: UInt8
    var addressSize: Int
    /// 4 for 32-bit DWARF, 8 for 64-bit DWARF.
    var offsetSize: Int
    var abbreviationOffset: Int
    var firstDIEOffset: Int
    /// Type units: the signature and the CU-relative offset of the type DIE.
    var typeSignature: UInt64 = 0
    var typeOffset: Int = 0
    /// DW_AT_str_offsets_base of the root DIE (where strx indices start in .debug_str_offsets).
    var strOffsetsBase: Int = 0
    var language: UInt64 = 0
    /// Index of the unit's decoded abbreviation table in `DWARFContext`.
    var abbreviationTable: Int = DWARFUnit.tableNotYetFound
    /// `abbreviationTable` before `DWARFContext.abbreviationTable(ofUnit:)` finds it.
    static let tableNotYetFound = -1

    /// Reads every unit header of `data`. Units of a version or type this reader does not
    /// handle (e.g. DWARF 6, split units) are skipped whole, since their length is known.
    static func parseHeaders(of data: DWARFSectionData, object: Int) throws -> [DWARFUnit] {
        var units: [DWARFUnit] = []
        var cursor = data.cursor(at: 0)
        while !cursor.isAtEnd {
            let start = cursor.offset
            var length = UInt64(try cursor.u32())
            var offsetSize = 4
            if length == 0xffff_ffff {
                length = try cursor.u64()
                offsetSize = 8
            } else if length >= 0xffff_fff0 {
                throw DWARFError.malformed("reserved unit length 0x\(String(length, radix: 16)) in \(data.kind.name) at 0x\(String(start, radix: 16))")
            }
            if length == 0 { continue } // padding between units
            guard length <= UInt64(cursor.remaining) else {
                throw DWARFError.truncated(section: data.kind.name, offset: start)
            }
            let end = cursor.offset + Int(length)
            var header = data.cursor(at: cursor.offset, end: end)
            cursor.offset = end
            let version = Int(try header.u16())
            guard (2...5).contains(version) else { continue }
            var unit = DWARFUnit(object: object, section: data.kind, offset: start, end: end, version: version,
                                 unitType: DWARFConstant.UnitType.compile, addressSize: 0, offsetSize: offsetSize,
                                 abbreviationOffset: 0, firstDIEOffset: 0)
            if version >= 5 {
                unit.unitType = try header.u8()
                unit.addressSize = Int(try header.u8())
                unit.abbreviationOffset = try offset(&header, offsetSize)
                switch unit.unitType {
                case DWARFConstant.UnitType.compile, DWARFConstant.UnitType.partial: break
                case DWARFConstant.UnitType.type:
                    unit.typeSignature = try header.u64()
                    unit.typeOffset = try offset(&header, offsetSize)
                default: continue // skeleton and split units describe a .dwo file, not types here
                }
            } else {
                unit.abbreviationOffset = try offset(&header, offsetSize)
                unit.addressSize = Int(try header.u8())
                if data.kind == .types {
                    unit.unitType = DWARFConstant.UnitType.type
                    unit.typeSignature = try header.u64()
                    unit.typeOffset = try offset(&header, offsetSize)
                }
            }
            guard [1, 2, 4, 8].contains(unit.addressSize) else {
                throw DWARFError.malformed("address size \(unit.addressSize) in unit at \(data.kind.name)+0x\(String(start, radix: 16))")
            }
            unit.firstDIEOffset = header.offset
            units.append(unit)
        }
        return units
    }

    private static func offset(_ cursor: inout DWARFCursor, _ size: Int) throws -> Int {
        let value = try cursor.sectionOffset(size: size)
        guard value <= UInt64(Int32.max) * 16 else {
            throw DWARFError.malformed("offset 0x\(String(value, radix: 16)) too large in \(cursor.section.name)")
        }
        return Int(value)
    }
}
