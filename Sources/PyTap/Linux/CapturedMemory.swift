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

    public init(live: RemoteMemory) {
        self.live = live
    }

    /// Forgets the previous sample's copies.
    public func reset() {
        copies.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
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
        try live.read(address, into: buffer)
    }

    private func serve(_ copy: RemoteBytes, _ address: UInt64, _ buffer: UnsafeMutableRawBufferPointer) {
        let offset = Int(address - copy.address)
        copy.bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + buffer.count)]))
        }
    }
}
