/// A Common Information Entry: what the FDEs that point to it share (alignment factors,
/// return-address column, augmentations, initial instructions).
public struct CommonInformationEntry: Sendable, Equatable {
    public var offset: Int
    public var version: UInt8
    public var augmentation: String
    public var addressSize: Int
    public var codeAlignment: UInt64
    public var dataAlignment: Int64
    public var returnAddressColumn: Int
    /// 'R': how the FDEs' addresses are encoded.
    public var fdeEncoding: UInt8 = PointerEncoding.absolute
    /// 'L': how the FDEs' LSDA pointers are encoded (omit when absent).
    public var lsdaEncoding: UInt8 = PointerEncoding.omit
    /// 'P': the personality routine's address (not dereferenced when indirect: pytap never calls it).
    public var personality: UInt64?
    /// 'S': frames of this CIE are signal trampolines; their caller's pc is not a return address.
    public var isSignalFrame = false
    /// 'z': FDEs carry an augmentation-data length.
    public var hasAugmentationData = false
    /// Offsets of the initial instructions in the section.
    public var instructions: Range<Int>
}

/// A Frame Description Entry: the CFA program of one address range.
public struct FrameDescriptionEntry: Sendable, Equatable {
    public var offset: Int
    public var cie: CommonInformationEntry
    /// Link-time address of the first instruction covered.
    public var initialLocation: UInt64
    public var addressRange: UInt64
    public var lsda: UInt64?
    public var instructions: Range<Int>

    public var addresses: Range<UInt64> { initialLocation..<(initialLocation &+ addressRange) }
    public func contains(_ address: UInt64) -> Bool { address >= initialLocation && address - initialLocation < addressRange }
}

/// One entry of a CFI section, as found by walking it.
public enum CFIEntry: Sendable {
    case cie(CommonInformationEntry)
    case fde(FrameDescriptionEntry)
    /// A zero length: the end of .eh_frame.
    case terminator
}

extension CFISection {
    /// The entry at `offset` and the offset of the next one.
    public func entry(at offset: Int) throws -> (entry: CFIEntry, next: Int) {
        var cursor = self.cursor(at: offset)
        let header = try entryHeader(&cursor)
        if header.length == 0, isEHFrame { return (.terminator, cursor.offset) }
        if header.isCIE {
            return (.cie(try parseCIE(at: offset, cursor: &cursor, end: header.end)), header.end)
        }
        let cie = try commonInformationEntry(at: header.ciePointer)
        return (.fde(try parseFDE(at: offset, cie: cie, cursor: &cursor, end: header.end)), header.end)
    }

    /// The FDE at `offset` (e.g. from .eh_frame_hdr's table).
    public func frameDescriptionEntry(at offset: Int) throws -> FrameDescriptionEntry {
        guard case .fde(let fde) = try entry(at: offset).entry else {
            throw DWARFError.malformed("no FDE at offset 0x\(String(offset, radix: 16)) of \(kind.name)")
        }
        return fde
    }

    public func commonInformationEntry(at offset: Int) throws -> CommonInformationEntry {
        var cursor = self.cursor(at: offset)
        let header = try entryHeader(&cursor)
        guard header.isCIE, header.length != 0 else {
            throw DWARFError.malformed("no CIE at offset 0x\(String(offset, radix: 16)) of \(kind.name)")
        }
        return try parseCIE(at: offset, cursor: &cursor, end: header.end)
    }

    /// Every entry in order (stops at the terminator or the end of the section).
    public func entries() throws -> [CFIEntry] {
        var result = [CFIEntry]()
        var offset = 0
        while offset < count {
            let (entry, next) = try self.entry(at: offset)
            if case .terminator = entry { break }
            result.append(entry)
            offset = next
        }
        return result
    }

    private struct EntryHeader {
        var length: UInt64
        var end: Int
        var isCIE: Bool
        var ciePointer: Int
    }

    /// Length, then the CIE id (a CIE) or the CIE pointer (an FDE), 32- or 64-bit DWARF.
    private func entryHeader(_ cursor: inout DWARFCursor) throws -> EntryHeader {
        var length = UInt64(try cursor.u32())
        var offsetSize = 4
        if length == 0xffff_ffff {
            length = try cursor.u64()
            offsetSize = 8
        }
        if length == 0 { return EntryHeader(length: 0, end: cursor.offset, isCIE: false, ciePointer: 0) }
        guard length <= UInt64(cursor.remaining) else { throw cursor.truncated() }
        let end = cursor.offset + Int(length)
        cursor.end = end
        let idOffset = cursor.offset
        let id = try cursor.sectionOffset(size: offsetSize)
        if isEHFrame {
            // .eh_frame: id 0 is a CIE; otherwise the distance back to the CIE from this field.
            guard id != 0 else { return EntryHeader(length: length, end: end, isCIE: true, ciePointer: 0) }
            guard id <= UInt64(idOffset) else { throw DWARFError.malformed("CIE pointer out of .eh_frame at 0x\(String(idOffset, radix: 16))") }
            return EntryHeader(length: length, end: end, isCIE: false, ciePointer: idOffset - Int(id))
        }
        let cieID: UInt64 = offsetSize == 8 ? UInt64.max : 0xffff_ffff
        guard id != cieID else { return EntryHeader(length: length, end: end, isCIE: true, ciePointer: 0) }
        guard id < UInt64(count) else { throw DWARFError.malformed("CIE pointer out of .debug_frame at 0x\(String(idOffset, radix: 16))") }
        return EntryHeader(length: length, end: end, isCIE: false, ciePointer: Int(id))
    }

    private func parseCIE(at offset: Int, cursor: inout DWARFCursor, end: Int) throws -> CommonInformationEntry {
        let version = try cursor.u8()
        guard version == 1 || version == 3 || version == 4 else {
            throw DWARFError.malformed("CIE version \(version) at 0x\(String(offset, radix: 16)) of \(kind.name)")
        }
        let augmentationStart = cursor.offset
        try cursor.skipCString()
        let augmentation = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[augmentationStart..<(cursor.offset - 1)]), as: UTF8.self)
        var addressSize = 8
        if augmentation.contains("eh") { try cursor.skip(addressSize) }  // old GCC: the eh_ptr field
        if version == 4 {
            addressSize = Int(try cursor.u8())
            guard addressSize == 4 || addressSize == 8 else { throw DWARFError.malformed("CIE address size \(addressSize)") }
            _ = try cursor.u8()  // segment selector size
        }
        let codeAlignment = try cursor.uleb128()
        let dataAlignment = try cursor.sleb128()
        let returnAddress = version == 1 ? UInt64(try cursor.u8()) : try cursor.uleb128()
        guard returnAddress < 1024 else { throw DWARFError.malformed("CIE return-address column \(returnAddress)") }
        var cie = CommonInformationEntry(offset: offset, version: version, augmentation: augmentation, addressSize: addressSize,
                                         codeAlignment: codeAlignment, dataAlignment: dataAlignment,
                                         returnAddressColumn: Int(returnAddress), instructions: 0..<0)
        if augmentation.hasPrefix("z") {
            cie.hasAugmentationData = true
            let length = try cursor.uleb128()
            guard length <= UInt64(cursor.remaining) else { throw cursor.truncated() }
            let dataEnd = cursor.offset + Int(length)
            for letter in augmentation.utf8.dropFirst() {
                switch letter {
                case UInt8(ascii: "L"): cie.lsdaEncoding = try cursor.u8()
                case UInt8(ascii: "R"): cie.fdeEncoding = try cursor.u8()
                case UInt8(ascii: "S"): cie.isSignalFrame = true
                case UInt8(ascii: "P"):
                    // The personality is usually indirect through a relocated .data slot; its
                    // address is enough, so the indirection is not followed.
                    let encoding = try cursor.u8()
                    cie.personality = try PointerEncoding.read(encoding & ~PointerEncoding.indirect, from: &cursor, section: self)
                case UInt8(ascii: "B"), UInt8(ascii: "G"): break  // aarch64 BTI / MTE: no data
                default: break  // an unknown letter: the length says where the data ends
                }
                if cursor.offset > dataEnd { throw DWARFError.malformed("CIE augmentation data overruns at 0x\(String(offset, radix: 16))") }
            }
            cursor.offset = dataEnd
        } else if !augmentation.isEmpty && augmentation != "eh" {
            throw DWARFError.malformed("CIE augmentation '\(augmentation)' at 0x\(String(offset, radix: 16)) of \(kind.name)")
        }
        cie.instructions = cursor.offset..<end
        return cie
    }

    private func parseFDE(at offset: Int, cie: CommonInformationEntry, cursor: inout DWARFCursor, end: Int) throws -> FrameDescriptionEntry {
        let initialLocation: UInt64
        let addressRange: UInt64
        if isEHFrame {
            guard let start = try PointerEncoding.read(cie.fdeEncoding, from: &cursor, section: self),
                  let range = try PointerEncoding.read(cie.fdeEncoding & 0x0f, from: &cursor, section: self) else {
                throw DWARFError.malformed("FDE at 0x\(String(offset, radix: 16)) omits its address")
            }
            initialLocation = start
            addressRange = range
        } else {
            initialLocation = try cursor.unsigned(size: cie.addressSize)
            addressRange = try cursor.unsigned(size: cie.addressSize)
        }
        var lsda: UInt64?
        if cie.hasAugmentationData {
            let length = try cursor.uleb128()
            guard length <= UInt64(cursor.remaining) else { throw cursor.truncated() }
            let dataEnd = cursor.offset + Int(length)
            if cie.lsdaEncoding != PointerEncoding.omit {
                lsda = try PointerEncoding.read(cie.lsdaEncoding & ~PointerEncoding.indirect, from: &cursor, section: self,
                                                functionBase: initialLocation)
            }
            cursor.offset = dataEnd
        }
        return FrameDescriptionEntry(offset: offset, cie: cie, initialLocation: initialLocation, addressRange: addressRange,
                                     lsda: lsda, instructions: cursor.offset..<end)
    }
}
