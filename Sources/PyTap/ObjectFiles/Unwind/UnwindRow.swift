/// How to find a register's value in the caller (DWARF 5 §6.4.1), given the CFA.
public enum RegisterRule: Sendable, Equatable {
    /// The register was not saved and its value cannot be recovered (for the return
    /// address: this is the outermost frame).
    case undefined
    /// The caller's value is this frame's value.
    case sameValue
    /// Saved at address CFA + N.
    case offset(Int64)
    /// The value is CFA + N.
    case valueOffset(Int64)
    /// Saved in another register.
    case register(Int)
    /// Saved at the address the expression computes (the CFA pushed first).
    case expression([UInt8])
    /// The value is what the expression computes (the CFA pushed first).
    case valueExpression([UInt8])
}

/// How to compute the Canonical Frame Address.
public enum CFARule: Sendable, Equatable {
    case registerOffset(register: Int, offset: Int64)
    case expression([UInt8])
}

/// One row of the unwind table: the rules that hold from `startAddress` on.
public struct UnwindRow: Sendable, Equatable {
    public var startAddress: UInt64
    public var cfa: CFARule
    /// Rules of the tracked registers, indexed by DWARF number; a register no instruction
    /// mentioned keeps its value (`.sameValue`), except the return-address column (`.undefined`).
    public var registers: [RegisterRule]
    /// DW_CFA_GNU_args_size, kept for completeness (the unwinder does not need it).
    public var argumentsSize: UInt64 = 0

    public init(startAddress: UInt64, cfa: CFARule, registers: [RegisterRule]) {
        self.startAddress = startAddress
        self.cfa = cfa
        self.registers = registers
    }

    public func rule(_ register: Int) -> RegisterRule {
        register >= 0 && register < registers.count ? registers[register] : .undefined
    }
}
