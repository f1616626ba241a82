/// One section of call-frame information, `.eh_frame` or `.debug_frame`, with the
/// link-time addresses that relative pointer encodings are computed from. The bytes are
/// either a slice of an ELF file's mapping or a private copy (tests, inflated sections).
public struct CFISection: @unchecked Sendable {
    /// `.ehFrame` or `.debugFrame`: the two differ in CIE ids, CIE pointers and pointer encodings.
    let kind: DWARFSectionKind
    let data: DWARFSectionData
    /// Link-time address of the first byte (DW_EH_PE_pcrel); 0 for .debug_frame.
    public let address: UInt64
    /// Bases of DW_EH_PE_textrel and DW_EH_PE_datarel (x86_64 producers use neither in .eh_frame).
    public var textBase: UInt64?
    public var dataBase: UInt64?
    /// Reads a pointer at a link-time address, for DW_EH_PE_indirect (nil: unreadable).
    public var readPointer: @Sendable (UInt64) -> UInt64?

    public var isEHFrame: Bool { kind == .ehFrame }
    public var count: Int { data.count }
    var bytes: UnsafeRawBufferPointer { data.bytes }

    /// A section built from bytes in memory (tests and inflated .debug_frame).
    public init(ehFrame: Bool, copying bytes: [UInt8], address: UInt64,
                readPointer: @escaping @Sendable (UInt64) -> UInt64? = { _ in nil }) {
        kind = ehFrame ? .ehFrame : .debugFrame
        data = DWARFSectionData(kind: kind, copying: bytes)
        self.address = address
        self.readPointer = readPointer
    }

    /// The section of an ELF file, read in place.
    init(elf: ELFFile, section: ELFSection, ehFrame: Bool) throws {
        kind = ehFrame ? .ehFrame : .debugFrame
        data = try DWARFSectionData(kind: kind, elf: elf, section: section)
        address = ehFrame ? section.address : 0
        readPointer = { [elf] address in
            elf.bytes(atVirtualAddress: address, count: 8).map { bytes in
                bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            }
        }
    }

    func cursor(at offset: Int, end: Int? = nil) -> DWARFCursor { data.cursor(at: offset, end: end) }
}

/// DW_EH_PE_* pointer encodings (LSB "Exception Frame" spec): the low nibble is the
/// value's format, bits 4–6 what it is relative to, bit 7 an indirection.
public enum PointerEncoding {
    public static let absolute: UInt8 = 0x00
    public static let uleb128: UInt8 = 0x01
    public static let udata2: UInt8 = 0x02
    public static let udata4: UInt8 = 0x03
    public static let udata8: UInt8 = 0x04
    public static let sleb128: UInt8 = 0x09
    public static let sdata2: UInt8 = 0x0a
    public static let sdata4: UInt8 = 0x0b
    public static let sdata8: UInt8 = 0x0c
    public static let pcRelative: UInt8 = 0x10
    public static let textRelative: UInt8 = 0x20
    public static let dataRelative: UInt8 = 0x30
    public static let functionRelative: UInt8 = 0x40
    public static let aligned: UInt8 = 0x50
    public static let indirect: UInt8 = 0x80
    public static let omit: UInt8 = 0xff

    /// The byte size of a fixed-size format, nil for LEB128 (and unknown formats).
    static func fixedSize(_ encoding: UInt8, pointerSize: Int = 8) -> Int? {
        switch encoding & 0x0f {
        case absolute: return pointerSize
        case udata2, sdata2: return 2
        case udata4, sdata4: return 4
        case udata8, sdata8: return 8
        default: return nil
        }
    }

    /// Reads one encoded pointer at the cursor. `functionBase` is the FDE's start (funcrel).
    /// Returns nil for DW_EH_PE_omit.
    static func read(_ encoding: UInt8, from cursor: inout DWARFCursor, section: CFISection,
                     dataBase: UInt64? = nil, functionBase: UInt64? = nil, pointerSize: Int = 8) throws -> UInt64? {
        if encoding == omit { return nil }
        let fieldOffset = cursor.offset
        if encoding & 0x70 == aligned {
            let misalignment = (Int(section.address & 7) + cursor.offset) % pointerSize
            if misalignment != 0 { try cursor.skip(pointerSize - misalignment) }
        }
        var value: UInt64
        switch encoding & 0x0f {
        case absolute: value = try cursor.unsigned(size: pointerSize)
        case uleb128: value = try cursor.uleb128()
        case udata2: value = UInt64(try cursor.u16())
        case udata4: value = UInt64(try cursor.u32())
        case udata8: value = try cursor.u64()
        case sleb128: value = UInt64(bitPattern: try cursor.sleb128())
        case sdata2: value = UInt64(bitPattern: Int64(Int16(bitPattern: try cursor.u16())))
        case sdata4: value = UInt64(bitPattern: Int64(Int32(bitPattern: try cursor.u32())))
        case sdata8: value = try cursor.u64()
        default: throw DWARFError.malformed("pointer encoding 0x\(String(encoding, radix: 16)) in \(section.kind.name)")
        }
        switch encoding & 0x70 {
        case absolute, aligned: break
        case pcRelative: value = value &+ section.address &+ UInt64(fieldOffset)
        case textRelative:
            guard let base = section.textBase else { throw missingBase("textrel", section) }
            value = value &+ base
        case dataRelative:
            guard let base = dataBase ?? section.dataBase else { throw missingBase("datarel", section) }
            value = value &+ base
        case functionRelative:
            guard let base = functionBase else { throw missingBase("funcrel", section) }
            value = value &+ base
        default: throw DWARFError.malformed("pointer encoding 0x\(String(encoding, radix: 16)) in \(section.kind.name)")
        }
        if encoding & indirect != 0 {
            guard let target = section.readPointer(value) else {
                throw DWARFError.malformed("indirect pointer at 0x\(String(value, radix: 16)) is not in the file")
            }
            value = target
        }
        return value
    }

    private static func missingBase(_ what: String, _ section: CFISection) -> DWARFError {
        .malformed("\(what) pointer in \(section.kind.name) without a base address")
    }
}
