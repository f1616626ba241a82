/// Per thread, where its stack ends, learned from unwinds that reached the thread's first
/// frame (that frame's CFA: no unwind of the thread reads above it). The BPF program copies
/// the user stack only up to there, not the full `PYTAP_USER_STACK_BYTES`. The highest end
/// seen is kept: an end too high only copies more, one too low would leave the unwind to
/// read the rest live.
struct StackEnds {
    private(set) var ends: [Int32: UInt64] = [:]

    /// Takes the end of a complete unwind that started at `stackPointer`; returns the end to
    /// hand the program when it is new or higher than the one known. An end at or below the
    /// stack pointer (a signal handler on an alternate stack) says nothing about the stack.
    mutating func learn(tid: Int32, stackPointer: UInt64, end: UInt64) -> UInt64? {
        guard end > stackPointer, end > ends[tid] ?? 0 else { return nil }
        ends[tid] = end
        return end
    }

    /// Drops a thread's end (the thread is gone or runs another thread state).
    mutating func forget(tid: Int32) -> Bool { ends.removeValue(forKey: tid) != nil }
}
