import PyTap

/// A fake address space for the reader tests: a few mapped regions of bytes. It can count
/// and log reads, fail every read after the N-th one with `.processGone` (a process that
/// exits mid-walk), and run a hook before each read that may change bytes (a stack that
/// changes under the reader).
final class FakeMemory: RemoteMemory {
    struct Region {
        let start: UInt64
        var bytes: [UInt8]
        var end: UInt64 { start + UInt64(bytes.count) }
    }

    private(set) var regions: [Region] = []
    /// Every read asked for, served or not, in order.
    private(set) var readLog: [(address: UInt64, count: Int)] = []
    var readCount: Int { readLog.count }
    /// When set, reads after this many reads throw `.processGone`.
    var failAfterReads: Int?
    /// Runs before each read is served, with the read's address and size.
    var beforeRead: ((FakeMemory, UInt64, Int) -> Void)?

    /// Where `allocate` hands out memory: one zero-filled region, bump-allocated.
    let heapStart: UInt64
    private var heapNext: UInt64

    init(heapStart: UInt64 = 0x5555_0000_0000, heapSize: Int = 1 << 20) {
        self.heapStart = heapStart
        self.heapNext = heapStart + 0x100
        map(at: heapStart, size: heapSize)
    }

    // MARK: Layout helpers

    /// Maps `size` zero bytes at `address` (not overlapping another region).
    func map(at address: UInt64, size: Int) {
        precondition(!regions.contains { address < $0.end && $0.start < address + UInt64(size) }, "overlapping regions")
        regions.append(Region(start: address, bytes: [UInt8](repeating: 0, count: size)))
    }

    /// Zeroed heap memory for one object; objects lie at increasing addresses.
    func allocate(_ size: Int, alignment: UInt64 = 16) -> UInt64 {
        let address = (heapNext + alignment - 1) / alignment * alignment
        heapNext = address + UInt64(max(size, 1))
        precondition(heapNext <= heapStart + UInt64(regions[0].bytes.count), "fake heap exhausted")
        return address
    }

    func write<C: Collection>(_ bytes: C, at address: UInt64) where C.Element == UInt8 {
        guard let index = regions.firstIndex(where: { address >= $0.start && address + UInt64(bytes.count) <= $0.end }) else {
            preconditionFailure("write to unmapped 0x\(String(address, radix: 16))")
        }
        let offset = Int(address - regions[index].start)
        regions[index].bytes.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }

    func writeInteger<T: FixedWidthInteger>(_ value: T, at address: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { write(Array($0), at: address) }
    }

    func u8(_ value: UInt8, at address: UInt64) { writeInteger(value, at: address) }
    func u16(_ value: UInt16, at address: UInt64) { writeInteger(value, at: address) }
    func u32(_ value: UInt32, at address: UInt64) { writeInteger(value, at: address) }
    func i32(_ value: Int32, at address: UInt64) { writeInteger(value, at: address) }
    func u64(_ value: UInt64, at address: UInt64) { writeInteger(value, at: address) }
    func i64(_ value: Int64, at address: UInt64) { writeInteger(value, at: address) }
    func pointer(_ value: UInt64, at address: UInt64) { writeInteger(value, at: address) }

    /// A NUL-terminated copy of `text` on the heap.
    func cString(_ text: String) -> UInt64 {
        let bytes = Array(text.utf8) + [0]
        let address = allocate(bytes.count)
        write(bytes, at: address)
        return address
    }

    /// The bytes now at `address` (for checks, not logged).
    func peek(_ address: UInt64, count: Int) -> [UInt8]? {
        guard let region = regions.first(where: { address >= $0.start && address + UInt64(count) <= $0.end }) else { return nil }
        let offset = Int(address - region.start)
        return Array(region.bytes[offset..<(offset + count)])
    }

    func resetLog() {
        readLog.removeAll()
        batchLog.removeAll()
    }

    /// The number of ranges of each batched read (`readMany`: one system call on a live
    /// process); its ranges are logged in `readLog` too.
    private(set) var batchLog: [Int] = []

    // MARK: RemoteMemory

    func readMany(_ ranges: [(address: UInt64, count: Int)]) -> [Result<[UInt8], MemoryReadError>] {
        batchLog.append(ranges.count)
        return ranges.map { range in
            do {
                return .success(try readBytes(range.address, count: range.count))
            } catch let error as MemoryReadError {
                return .failure(error)
            } catch {
                return .failure(.system(errno: 5))
            }
        }
    }

    func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let count = buffer.count
        readLog.append((address, count))
        if let limit = failAfterReads, readLog.count > limit { throw MemoryReadError.processGone }
        beforeRead?(self, address, count)
        // A read wholly inside one region, else nothing (like process_vm_readv on a hole).
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard !overflow, let region = regions.first(where: { address >= $0.start && end <= $0.end }) else {
            throw MemoryReadError.unmapped(address: address, length: count)
        }
        let offset = Int(address - region.start)
        region.bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + count)]))
        }
    }
}

/// Little-endian byte building for hand-made tables and files.
struct ByteWriter {
    var bytes: [UInt8] = []

    var count: Int { bytes.count }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { append(value) }
    mutating func u32(_ value: UInt32) { append(value) }
    mutating func u64(_ value: UInt64) { append(value) }
    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func append(_ other: [UInt8]) { bytes.append(contentsOf: other) }
    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
}
