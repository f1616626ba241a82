/// The GIL holder read as one range batched with other reads (see
/// `allThreadStates(readingFirst:)`), so a sampling round learns it without a system call
/// of its own. `gilHolder(interpreter:)` is the same answer in reads of its own.
extension PythonReader {
    /// Where an interpreter's GIL state is: one range covering `locked` and `last_holder`
    /// (or the current thread-state variable on 2.7/3.6). 3.12+ keep the GIL behind a
    /// pointer of the interpreter, read here (once: the caller keeps the range for as long
    /// as it knows the interpreter).
    public func gilStateRange(interpreter: UInt64) -> GILStateRange? {
        switch layout.traits.gil {
        case .currentThreadSymbol:
            return addresses.currentThreadState.map { GILStateRange(address: $0, count: 8, lockedOffset: nil, holderOffset: 0) }
        case .runtimeGIL:
            guard let runtime = addresses.runtime, let locked = layout[.runtimeGILLocked],
                  let holder = layout[.runtimeGILLastHolder] else { return nil }
            return GILStateRange(base: runtime, lockedOffset: locked, holderOffset: holder)
        case .interpreterGIL:
            guard let pointerOffset = layout[.interpGIL], let locked = layout[.gilLocked], let holder = layout[.gilLastHolder],
                  let gil = try? memory.readPointer(interpreter &+ UInt64(pointerOffset)), gil != 0 else { return nil }
            return GILStateRange(base: gil, lockedOffset: locked, holderOffset: holder)
        }
    }
}

/// One read that answers which thread state holds a GIL.
public struct GILStateRange: Sendable {
    public let address: UInt64
    public let count: Int
    /// Where `locked` and `last_holder` are in the bytes read (no `locked`: the holder
    /// variable is NULL while the GIL is free).
    let lockedOffset: Int?
    let holderOffset: Int

    init(address: UInt64, count: Int, lockedOffset: Int?, holderOffset: Int) {
        self.address = address
        self.count = count
        self.lockedOffset = lockedOffset
        self.holderOffset = holderOffset
    }

    /// `locked` (an int) and `last_holder` (a pointer) of a GIL structure at `base`.
    init?(base: UInt64, lockedOffset: Int, holderOffset: Int) {
        let start = min(lockedOffset, holderOffset)
        let end = max(lockedOffset + 4, holderOffset + 8)
        guard start >= 0, end - start <= 64 else { return nil }
        self.init(address: base &+ UInt64(start), count: end - start, lockedOffset: lockedOffset - start,
                  holderOffset: holderOffset - start)
    }

    /// The holding thread state from the bytes read at the range; nil when the GIL is free
    /// or the bytes are short.
    public func holder(fromBytes bytes: [UInt8]) -> UInt64? {
        let state = RemoteBytes(address: address, bytes: bytes)
        if let lockedOffset {
            guard let locked = try? state.i32(lockedOffset), locked != 0 else { return nil }
        }
        guard let holder = try? state.pointer(holderOffset), holder != 0 else { return nil }
        return holder
    }
}
