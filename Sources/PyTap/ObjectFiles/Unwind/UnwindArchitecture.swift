/// What the unwinder needs to know about one processor architecture: DWARF register
/// numbers, the return-address column, how a frame-pointer record and a signal frame are
/// laid out. Everything architecture-specific lives here, so another architecture is one
/// more value of this type.
public struct UnwindArchitecture: Sendable {
    public var name: String
    /// DWARF registers tracked (0..<registerCount); the return-address column is one of them.
    public var registerCount: Int
    /// The DWARF column that holds the return address (x86_64: 16, the pseudo-register "RA").
    public var returnAddressColumn: Int
    public var stackPointer: Int
    public var framePointer: Int
    public var pointerSize: Int
    /// The CFA rule at a function's first instruction (x86_64: rsp + 8, after `call`).
    public var entryCFAOffset: Int64
    /// A frame-pointer record: caller's frame pointer at [fp + savedFramePointer], the
    /// return address at [fp + returnAddress]; the caller's stack pointer is fp + callerStack.
    public var savedFramePointerOffset: Int64
    public var savedReturnAddressOffset: Int64
    public var callerStackPointerOffset: Int64
    /// A signal trampoline without CFI, recognised by its code bytes, and where the
    /// interrupted registers lie relative to the stack pointer inside it.
    public var signalTrampoline: SignalTrampoline?
    /// DWARF register names, for messages and tests.
    public var registerNames: [String]
    /// For each DWARF register, its index among the general registers that ptrace's
    /// `PTRACE_GETREGSET(NT_PRSTATUS)` and a core's NT_PRSTATUS note list (nil: not there).
    public var generalRegisterSlots: [Int?] = []

    /// The registers of a frame from a thread's general registers (ptrace or a core).
    public func registers(fromGeneral words: [UInt64]) -> UnwindRegisters {
        var registers = UnwindRegisters(architecture: self)
        for (register, slot) in generalRegisterSlots.enumerated() {
            if let slot, slot < words.count { registers[register] = words[slot] }
        }
        return registers
    }

    /// The kernel's sigreturn trampoline and the saved registers of `struct ucontext`.
    public struct SignalTrampoline: Sendable {
        /// The trampoline's code (x86_64 `__restore_rt`: `mov $15, %rax; syscall`).
        public var code: [UInt8]
        /// Offset of the saved general registers (uc_mcontext.gregs) from the stack
        /// pointer at the trampoline.
        public var registersOffset: Int64
        /// For each DWARF register, the index of its slot in the saved registers (nil: not saved).
        public var slotOfRegister: [Int?]
    }

    /// x86_64 System V: DWARF 0–16 are rax, rdx, rcx, rbx, rsi, rdi, rbp, rsp, r8–r15, RA (rip).
    public static let x86_64: UnwindArchitecture = {
        // struct ucontext: uc_flags (8), uc_link (8), uc_stack (24), then uc_mcontext.gregs[]
        // in the order r8–r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip (<sys/ucontext.h>).
        // At __restore_rt the handler's `ret` has popped pretcode, so rsp points at the ucontext.
        let slots: [Int?] = [13, 12, 14, 11, 9, 8, 10, 15, 0, 1, 2, 3, 4, 5, 6, 7, 16]
        return UnwindArchitecture(
            name: "x86_64", registerCount: 17, returnAddressColumn: 16, stackPointer: 7, framePointer: 6, pointerSize: 8,
            entryCFAOffset: 8, savedFramePointerOffset: 0, savedReturnAddressOffset: 8, callerStackPointerOffset: 16,
            signalTrampoline: SignalTrampoline(code: [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05],
                                               registersOffset: 40, slotOfRegister: slots),
            registerNames: ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
                            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"],
            // struct user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi
            // orig_rax rip cs eflags rsp ss fs_base gs_base ds es fs gs.
            generalRegisterSlots: [10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0, 16])
    }()

    /// The architecture of an ELF file's machine, or nil when pytap cannot unwind it yet.
    public static func forMachine(_ machine: UInt16) -> UnwindArchitecture? {
        machine == ELFFile.machineX86_64 ? .x86_64 : nil
    }

    public func registerName(_ register: Int) -> String {
        register >= 0 && register < registerNames.count ? registerNames[register] : "r\(register)"
    }
}
