/// Where an entry uprobe costs one trap rather than two. The kernel (x86_64, 6.9+)
/// emulates a probed `push`, jump, call or `nop`; any other instruction is copied out of
/// line and single-stepped, a second trap that costs several times the first on a VM
/// (measured here: an empty uprobe on `_PyObject_Free`'s leading `test %rsi,%rsi` cost
/// 13–19 µs a hit, on `_PyObject_Malloc`'s leading `push %rbp` 3.3–4 µs).
///
/// `offset(in:)` walks a function's first instructions over those that only set flags or
/// a scratch register — never a jump, the stack pointer, memory or an argument register
/// (rdi, rsi, rdx, rcx) — to the first one the kernel emulates, so a probe there sees the
/// arguments as the entry does. Anything not recognised stops the walk at 0 (the entry).
/// For entry probes without a return probe only: a uretprobe must sit where the return
/// address is on top of the stack and be passed once per call, which the entry proves.
public enum EmulatedProbeSite {
    /// Instructions skipped at most.
    static let maximumSkipped = 4

    /// The byte offset from the function's start to probe instead of its entry (0: the entry).
    public static func offset(in code: [UInt8]) -> Int {
        var position = 0
        for _ in 0...maximumSkipped {
            guard position < code.count else { return 0 }
            if isEmulated(code, at: position) { return position }
            guard let length = harmlessLength(code, at: position) else { return 0 }
            position += length
        }
        return 0
    }

    /// push r64, jcc, jmp, call, nop.
    static func isEmulated(_ code: [UInt8], at position: Int) -> Bool {
        var index = position
        if code[index] == 0x41, index + 1 < code.count { index += 1 }  // REX.B: push r8-r15
        let opcode = code[index]
        if (0x50...0x57).contains(opcode) { return true }
        guard index == position else { return false }
        if (0x70...0x7f).contains(opcode) || opcode == 0xe8 || opcode == 0xe9 || opcode == 0xeb || opcode == 0x90 { return true }
        return opcode == 0x0f && index + 1 < code.count && (0x80...0x8f).contains(code[index + 1])
    }

    /// The length of `test r, r`, `mov r, r` or `lea r, [r + disp8]` when it writes no
    /// register an entry probe reads (nor rsp); nil for anything else.
    static func harmlessLength(_ code: [UInt8], at position: Int) -> Int? {
        var index = position
        var rex: UInt8 = 0
        if (0x40...0x4f).contains(code[index]) { rex = code[index]; index += 1 }
        guard index + 1 < code.count else { return nil }
        let opcode = code[index], modrm = code[index + 1]
        let mode = modrm >> 6
        let reg = (modrm >> 3) & 7 | (rex & 0x4 != 0 ? 8 : 0)
        let rm = modrm & 7 | (rex & 0x1 != 0 ? 8 : 0)
        let protected: Set<UInt8> = [1, 2, 4, 6, 7]  // rcx, rdx, rsp, rsi, rdi
        switch (opcode, mode) {
        case (0x85, 3):  // test r/m, r: flags only
            return index + 2 - position
        case (0x89, 3):  // mov r/m <- r
            return protected.contains(rm) ? nil : index + 2 - position
        case (0x8b, 3):  // mov r <- r/m
            return protected.contains(reg) ? nil : index + 2 - position
        case (0x8d, 1) where modrm & 7 != 4:  // lea r, [base + disp8] (no SIB byte)
            return protected.contains(reg) || index + 2 >= code.count ? nil : index + 3 - position
        default:
            return nil
        }
    }
}
