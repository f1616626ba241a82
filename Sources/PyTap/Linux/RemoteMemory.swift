/// Why bytes of another address space could not be had.
public enum MemoryReadError: Error, Equatable, Sendable {
    /// Nothing readable is mapped at (part of) this range: a stale or garbage pointer.
    case unmapped(address: UInt64, length: Int)
    /// The process is gone (exited, or its memory was torn down mid-read).
    case processGone
    /// The kernel refused the read (no CAP_SYS_PTRACE, Yama, seccomp).
    case permissionDenied
    /// A read larger than pytap allows for this structure: garbage length in remote memory.
    case tooLarge(address: UInt64, length: Int)
    /// A field lies outside the bytes copied for a structure: a layout/table bug or torn read.
    case fieldOutOfRange(offset: Int, size: Int, available: Int)
    /// Another errno from the read call.
    case system(errno: Int32)

    /// The range was not mapped: what a pointer into freed or never-mapped memory gives.
    public var isUnmapped: Bool {
        if case .unmapped = self { return true }
        return false
    }
}

/// The one seam between pytap and a target's memory: a live process, a fake in tests,
/// or a snapshot that serves some ranges from a copy.
public protocol RemoteMemory: AnyObject {
    /// Copies exactly `buffer.count` bytes starting at `address`; throws rather than
    /// return a partial copy.
    func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws

    /// Reads several ranges; each result is the bytes or the error of that range. A live
    /// process does this in one system call.
    func readMany(_ ranges: [(address: UInt64, count: Int)]) -> [Result<[UInt8], MemoryReadError>]
}

/// Largest single read pytap makes for one structure or string; anything larger is garbage.
public let maximumRemoteRead = 16 << 20

extension RemoteMemory {
    public func readMany(_ ranges: [(address: UInt64, count: Int)]) -> [Result<[UInt8], MemoryReadError>] {
        ranges.map { range in
            do {
                return .success(try readBytes(range.address, count: range.count))
            } catch let error as MemoryReadError {
                return .failure(error)
            } catch {
                return .failure(.system(errno: 5))
            }
        }
    }

    /// Copies `count` bytes starting at `address`.
    public func readBytes(_ address: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0, count <= maximumRemoteRead else {
            throw MemoryReadError.tooLarge(address: address, length: count)
        }
        if count == 0 { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { buffer in
            try read(address, into: buffer)
        }
        return bytes
    }

    /// Copies `count` bytes at `address` as a structure whose fields are read with bounds checks.
    public func readStruct(_ address: UInt64, count: Int) throws -> RemoteBytes {
        RemoteBytes(address: address, bytes: try readBytes(address, count: count))
    }

    /// Reads one little-endian integer.
    public func readInteger<T: FixedWidthInteger>(_ address: UInt64, as type: T.Type = T.self) throws -> T {
        var value = T.zero
        try withUnsafeMutableBytes(of: &value) { buffer in
            try read(address, into: buffer)
        }
        return T(littleEndian: value)
    }

    /// Reads one pointer-sized value (x86_64 and aarch64: 8 bytes).
    public func readPointer(_ address: UInt64) throws -> UInt64 {
        try readInteger(address, as: UInt64.self)
    }
}

/// A copy of remote bytes that began at `address`; every field read is bounds-checked,
/// so a wrong offset or a short copy is an error, never a crash or a silent zero.
public struct RemoteBytes: Sendable {
    public let address: UInt64
    public let bytes: [UInt8]

    public init(address: UInt64, bytes: [UInt8]) {
        self.address = address
        self.bytes = bytes
    }

    public var count: Int { bytes.count }

    @inline(__always)
    public func integer<T: FixedWidthInteger>(at offset: Int, as type: T.Type = T.self) throws -> T {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - size else {
            throw MemoryReadError.fieldOutOfRange(offset: offset, size: size, available: bytes.count)
        }
        return bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    public func u8(_ offset: Int) throws -> UInt8 { try integer(at: offset) }
    public func u16(_ offset: Int) throws -> UInt16 { try integer(at: offset) }
    public func u32(_ offset: Int) throws -> UInt32 { try integer(at: offset) }
    public func i32(_ offset: Int) throws -> Int32 { try integer(at: offset) }
    public func u64(_ offset: Int) throws -> UInt64 { try integer(at: offset) }
    public func i64(_ offset: Int) throws -> Int64 { try integer(at: offset) }
    public func pointer(_ offset: Int) throws -> UInt64 { try integer(at: offset) }

    /// Bytes `[offset, offset+count)` of the copy.
    public func slice(_ offset: Int, count: Int) throws -> ArraySlice<UInt8> {
        guard offset >= 0, count >= 0, offset <= bytes.count - count else {
            throw MemoryReadError.fieldOutOfRange(offset: offset, size: count, available: bytes.count)
        }
        return bytes[offset..<(offset + count)]
    }

    /// Whether `[address, address+count)` lies inside this copy.
    public func contains(_ remoteAddress: UInt64, count: Int) -> Bool {
        remoteAddress >= address && remoteAddress &- address <= UInt64(bytes.count) &- UInt64(count)
            && count <= bytes.count
    }
}
