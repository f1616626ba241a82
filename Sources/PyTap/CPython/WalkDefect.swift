/// Why a walk of a frame chain stopped early: the stack it returns is partial.
public enum WalkDefect: Equatable, Sendable, CustomStringConvertible {
    /// The frame chain points back into itself.
    case cycle(address: UInt64)
    /// A frame or code object could not be read: stale pointer, torn chain, or garbage.
    case unreadable(address: UInt64, what: String)
    /// The stack changed while it was read, even after retries.
    case changedWhileReading

    /// The cause without addresses, to count defects by kind ("frame unreadable").
    public var kind: String {
        switch self {
        case .cycle: return "cycle in the frame chain"
        case .unreadable(_, let what): return what + " unreadable"
        case .changedWhileReading: return "stack changed while read"
        }
    }

    public var description: String {
        switch self {
        case .cycle(let address): return "cycle in the frame chain at 0x\(String(address, radix: 16))"
        case .unreadable(let address, let what): return "unreadable \(what) at 0x\(String(address, radix: 16))"
        case .changedWhileReading: return "the stack changed while it was read"
        }
    }
}

