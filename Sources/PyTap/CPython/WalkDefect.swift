/// Why a walk of a frame chain stopped early: the stack it returns is partial.
public enum WalkDefect: Equatable, Sendable, CustomStringConvertible {
    /// The frame chain points back into itself.
    case cycle(address: UInt64)
    /// More frames than pytap walks (`maximumDepth`).
    case tooDeep(limit: Int)
    /// A frame or code object could not be read: stale pointer, torn chain, or garbage.
    case unreadable(address: UInt64, what: String)
    /// The stack changed while it was read, even after retries.
    case changedWhileReading

    public var description: String {
        switch self {
        case .cycle(let address): return "cycle in the frame chain at 0x\(String(address, radix: 16))"
        case .tooDeep(let limit): return "deeper than \(limit) frames"
        case .unreadable(let address, let what): return "unreadable \(what) at 0x\(String(address, radix: 16))"
        case .changedWhileReading: return "the stack changed while it was read"
        }
    }
}

