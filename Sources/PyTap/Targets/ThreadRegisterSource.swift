/// Where a thread's registers come from for its native stack: a live thread stopped for a
/// moment (ptrace), or a core's NT_PRSTATUS note.
public protocol ThreadRegisterSource: AnyObject {
    /// Runs `body` while the thread is held still, with its general registers (x86_64:
    /// `struct user_regs_struct` order); a live thread is resumed before this returns.
    func withThreadHeld<T>(tid: Int32, _ body: ([UInt64]) throws -> T) throws -> T
}

extension LiveProcessTarget: ThreadRegisterSource {
    public func withThreadHeld<T>(tid: Int32, _ body: ([UInt64]) throws -> T) throws -> T {
        try ThreadPause.withThreadStopped(tid: tid, body)
    }
}

extension CoreFileTarget: ThreadRegisterSource {
    public func withThreadHeld<T>(tid: Int32, _ body: ([UInt64]) throws -> T) throws -> T {
        guard let registers = registers(tid: tid), !registers.isEmpty else {
            throw CoreFileError.malformed(path: core.path, what: "no registers for thread \(tid)")
        }
        return try body(registers)
    }
}
