/// A target's memory as a sample saw it: ranges copied at the sample's instant (the stack,
/// the thread state, the Python frames) are served from the copies, everything else from
/// the live process (code, object files, the outer stack past the copy). A read that
/// covers part of a copy and part of live memory is refused, so a walk never mixes the
/// two instants in one structure (it reads the pieces one by one instead).
public final class CapturedMemory: RemoteMemory {
    private let live: RemoteMemory
    private var copies: [RemoteBytes] = []
    /// Copies by start address: the frame reads hit these exactly.
    private var starts: [UInt64: Int] = [:]
    /// Copies of parts of objects read whole from live memory (code objects' identity
    /// fields): they serve the reads they contain, and a read that only overlaps one goes
    /// to live memory.
    private var partialCopies: [RemoteBytes] = []
    private var partialStarts: [UInt64: Int] = [:]

    /// Reads that went to live memory (each takes the target's memory-map lock, which the
    /// target's own `brk` and `mmap` then wait for).
    public private(set) var liveReads = 0

    public init(live: RemoteMemory) {
        self.live = live
    }

    /// Forgets the previous sample's copies.
    public func reset() {
        copies.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
        partialCopies.removeAll(keepingCapacity: true)
        partialStarts.removeAll(keepingCapacity: true)
    }

    /// Adds a copy of part of an object (see `partialCopies`).
    public func addPartial(_ copy: RemoteBytes) {
        guard copy.count > 0 else { return }
        partialStarts[copy.address] = partialCopies.count
        partialCopies.append(copy)
    }

    public func add(_ copy: RemoteBytes) {
        guard copy.count > 0 else { return }
        starts[copy.address] = copies.count
        copies.append(copy)
    }

    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let count = buffer.count
        if let index = starts[address], copies[index].count >= count {
            serve(copies[index], address, buffer)
            return
        }
        let end = address &+ UInt64(count)
        for copy in copies {
            if copy.contains(address, count: count) {
                serve(copy, address, buffer)
                return
            }
            let copyEnd = copy.address &+ UInt64(copy.count)
            if address < copyEnd && copy.address < end {
                throw MemoryReadError.unmapped(address: address, length: count)
            }
        }
        if let index = partialStarts[address], partialCopies[index].count >= count {
            serve(partialCopies[index], address, buffer)
            return
        }
        for copy in partialCopies where copy.contains(address, count: count) {
            serve(copy, address, buffer)
            return
        }
        liveReads += 1
        try live.read(address, into: buffer)
    }

    /// The live process, its reads counted in `liveReads` (one system call a batch).
    public var liveMemory: RemoteMemory { LiveView(captured: self) }

    private final class LiveView: RemoteMemory {
        let captured: CapturedMemory
        init(captured: CapturedMemory) { self.captured = captured }
        func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
            captured.liveReads += 1
            try captured.live.read(address, into: buffer)
        }
        func readMany(_ ranges: [(address: UInt64, count: Int)]) -> [Result<[UInt8], MemoryReadError>] {
            captured.liveReads += 1
            return captured.live.readMany(ranges)
        }
    }

    private func serve(_ copy: RemoteBytes, _ address: UInt64, _ buffer: UnsafeMutableRawBufferPointer) {
        let offset = Int(address - copy.address)
        copy.bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + buffer.count)]))
        }
    }
}
