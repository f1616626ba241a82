/// A bounds-checked little-endian reader over one section (or one unit of it). Every read
/// checks against `end` and throws `DWARFError.truncated` instead of trapping, because
/// debug files are untrusted input.
struct DWARFCursor {
    let bytes: UnsafeRawBufferPointer
    /// Which section, for error messages.
    let section: DWARFSectionKind
    var offset: Int
    var end: Int

    init(bytes: UnsafeRawBufferPointer, section: DWARFSectionKind, offset: Int, end: Int) {
        self.bytes = bytes
        self.section = section
        self.offset = offset
        self.end = end
    }

    var isAtEnd: Bool { offset >= end }
    var remaining: Int { max(0, end - offset) }

    func truncated() -> DWARFError { .truncated(section: section.name, offset: offset) }

    mutating func skip(_ count: Int) throws {
        guard count >= 0, offset >= 0, count <= end - offset else { throw truncated() }
        offset += count
    }

    /// Skips `count` bytes given as an untrusted 64-bit length.
    mutating func skip(_ count: UInt64) throws {
        guard count <= UInt64(Int.max) else { throw truncated() }
        try skip(Int(count))
    }

    mutating func u8() throws -> UInt8 {
        guard offset >= 0, offset < end else { throw truncated() }
        let value = bytes[offset]
        offset += 1
        return value
    }

    mutating func u16() throws -> UInt16 {
        guard offset >= 0, end - offset >= 2 else { throw truncated() }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        offset += 2
        return UInt16(littleEndian: value)
    }

    mutating func u32() throws -> UInt32 {
        guard offset >= 0, end - offset >= 4 else { throw truncated() }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        offset += 4
        return UInt32(littleEndian: value)
    }

    mutating func u64() throws -> UInt64 {
        guard offset >= 0, end - offset >= 8 else { throw truncated() }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        offset += 8
        return UInt64(littleEndian: value)
    }

    /// An unsigned little-endian integer of 1, 2, 3, 4 or 8 bytes (strx3/addrx3 are 3).
    mutating func unsigned(size: Int) throws -> UInt64 {
        switch size {
        case 1: return UInt64(try u8())
        case 2: return UInt64(try u16())
        case 3:
            let low = UInt64(try u16())
            return low | UInt64(try u8()) << 16
        case 4: return UInt64(try u32())
        case 8: return try u64()
        default: throw DWARFError.malformed("integer of \(size) bytes in \(section.name) at 0x\(String(offset, radix: 16))")
        }
    }

    mutating func uleb128() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset >= 0, offset < end else { throw truncated() }
            let byte = bytes[offset]
            offset += 1
            if shift < 64 {
                result |= UInt64(byte & 0x7f) << shift
            } else if byte & 0x7f != 0 {
                throw DWARFError.malformed("LEB128 value too large in \(section.name) at 0x\(String(offset, radix: 16))")
            }
            if byte & 0x80 == 0 { return result }
            shift += 7
            guard shift < 640 else { throw DWARFError.malformed("LEB128 value too long in \(section.name)") }
        }
    }

    mutating func sleb128() throws -> Int64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var byte: UInt8 = 0
        repeat {
            guard offset >= 0, offset < end else { throw truncated() }
            byte = bytes[offset]
            offset += 1
            if shift < 64 { result |= UInt64(byte & 0x7f) << shift }
            shift += 7
            guard shift < 640 else { throw DWARFError.malformed("LEB128 value too long in \(section.name)") }
        } while byte & 0x80 != 0
        if shift < 64, byte & 0x40 != 0 { result |= ~0 << shift }
        return Int64(bitPattern: result)
    }

    /// Skips a NUL-terminated string, including the NUL.
    mutating func skipCString() throws {
        var position = offset
        while true {
            guard position >= 0, position < end else { throw DWARFError.truncated(section: section.name, offset: position) }
            if bytes[position] == 0 { break }
            position += 1
        }
        offset = position + 1
    }

    /// A section offset: 4 bytes in 32-bit DWARF, 8 in 64-bit DWARF.
    mutating func sectionOffset(size: Int) throws -> UInt64 {
        size == 8 ? try u64() : UInt64(try u32())
    }
}
