/// Evaluates the DWARF expressions of CFI rules (DWARF 5 §2.5): a stack machine over
/// 64-bit values with register reads (DW_OP_breg*) and memory reads (DW_OP_deref*).
/// It covers what compilers and glibc emit: PLT entries, signal trampolines, realigned
/// stacks. Steps and stack depth are capped, since the bytes are untrusted.
public enum CFIExpression {
    static let maximumSteps = 10_000
    static let maximumStackDepth = 64

    /// The value on top of the stack at the end. `push` is pushed first (the CFA, for
    /// register rules); `register` gives a register's value in the frame being unwound;
    /// `memory` reads `size` (1–8) bytes little-endian.
    public static func evaluate(_ expression: [UInt8], push: UInt64?,
                                register: (Int) throws -> UInt64,
                                memory: (UInt64, Int) throws -> UInt64) throws -> UInt64 {
        try expression.withUnsafeBytes { bytes in
            try evaluate(bytes, push: push, register: register, memory: memory)
        }
    }

    private static func evaluate(_ bytes: UnsafeRawBufferPointer, push: UInt64?,
                                 register: (Int) throws -> UInt64,
                                 memory: (UInt64, Int) throws -> UInt64) throws -> UInt64 {
        var cursor = DWARFCursor(bytes: bytes, section: .expression, offset: 0, end: bytes.count)
        var stack = [UInt64]()
        stack.reserveCapacity(8)
        if let push { stack.append(push) }
        func malformed(_ what: String) -> DWARFError { .malformed("CFI expression: \(what)") }
        func pop() throws -> UInt64 {
            guard let value = stack.popLast() else { throw malformed("pops an empty stack") }
            return value
        }
        func pushValue(_ value: UInt64) throws {
            guard stack.count < maximumStackDepth else { throw malformed("stack deeper than \(maximumStackDepth)") }
            stack.append(value)
        }
        func binary(_ operation: (UInt64, UInt64) throws -> UInt64) throws {
            let right = try pop()
            let left = try pop()
            try pushValue(try operation(left, right))
        }
        func compare(_ operation: (Int64, Int64) -> Bool) throws {
            try binary { left, right in operation(Int64(bitPattern: left), Int64(bitPattern: right)) ? 1 : 0 }
        }
        func branch(by offset: Int16) throws {
            let target = cursor.offset + Int(offset)
            guard target >= 0, target <= bytes.count else { throw malformed("branch out of the expression") }
            cursor.offset = target
        }
        func signed(_ value: UInt64) -> Int64 { Int64(bitPattern: value) }

        var steps = 0
        while !cursor.isAtEnd {
            steps += 1
            guard steps <= maximumSteps else { throw malformed("more than \(maximumSteps) steps (a loop?)") }
            let op = try cursor.u8()
            switch op {
            case 0x03: try pushValue(try cursor.u64())  // DW_OP_addr
            case 0x06: try pushValue(try memory(try pop(), 8))  // DW_OP_deref
            case 0x08: try pushValue(UInt64(try cursor.u8()))  // DW_OP_const1u
            case 0x09: try pushValue(UInt64(bitPattern: Int64(Int8(bitPattern: try cursor.u8()))))
            case 0x0a: try pushValue(UInt64(try cursor.u16()))
            case 0x0b: try pushValue(UInt64(bitPattern: Int64(Int16(bitPattern: try cursor.u16()))))
            case 0x0c: try pushValue(UInt64(try cursor.u32()))
            case 0x0d: try pushValue(UInt64(bitPattern: Int64(Int32(bitPattern: try cursor.u32()))))
            case 0x0e, 0x0f: try pushValue(try cursor.u64())  // DW_OP_const8u/s
            case 0x10: try pushValue(try cursor.uleb128())  // DW_OP_constu
            case 0x11: try pushValue(UInt64(bitPattern: try cursor.sleb128()))  // DW_OP_consts
            case 0x12: try pushValue(try stack.last ?? { throw malformed("DW_OP_dup on an empty stack") }())
            case 0x13: _ = try pop()  // DW_OP_drop
            case 0x14:  // DW_OP_over
                guard stack.count >= 2 else { throw malformed("DW_OP_over needs two values") }
                try pushValue(stack[stack.count - 2])
            case 0x15:  // DW_OP_pick
                let index = Int(try cursor.u8())
                guard index < stack.count else { throw malformed("DW_OP_pick \(index) past the stack") }
                try pushValue(stack[stack.count - 1 - index])
            case 0x16:  // DW_OP_swap
                guard stack.count >= 2 else { throw malformed("DW_OP_swap needs two values") }
                stack.swapAt(stack.count - 1, stack.count - 2)
            case 0x17:  // DW_OP_rot: top three rotate, the top going third
                guard stack.count >= 3 else { throw malformed("DW_OP_rot needs three values") }
                let top = stack.removeLast()
                stack.insert(top, at: stack.count - 2)
            case 0x19: try pushValue(UInt64(bitPattern: abs(signed(try pop()))))  // DW_OP_abs (wraps at Int64.min)
            case 0x1a: try binary { $0 & $1 }  // DW_OP_and
            case 0x1b:  // DW_OP_div (signed)
                try binary { left, right in
                    guard right != 0 else { throw malformed("division by zero") }
                    return UInt64(bitPattern: signed(left).dividedReportingOverflow(by: signed(right)).partialValue)
                }
            case 0x1c: try binary { $0 &- $1 }  // DW_OP_minus
            case 0x1d:  // DW_OP_mod
                try binary { left, right in
                    guard right != 0 else { throw malformed("modulo by zero") }
                    return left % right
                }
            case 0x1e: try binary { $0 &* $1 }  // DW_OP_mul
            case 0x1f: try pushValue(0 &- (try pop()))  // DW_OP_neg
            case 0x20: try pushValue(~(try pop()))  // DW_OP_not
            case 0x21: try binary { $0 | $1 }  // DW_OP_or
            case 0x22: try binary { $0 &+ $1 }  // DW_OP_plus
            case 0x23: try pushValue(try pop() &+ (try cursor.uleb128()))  // DW_OP_plus_uconst
            case 0x24: try binary { $1 >= 64 ? 0 : $0 << $1 }  // DW_OP_shl
            case 0x25: try binary { $1 >= 64 ? 0 : $0 >> $1 }  // DW_OP_shr
            case 0x26: try binary { UInt64(bitPattern: signed($0) >> Int64(min($1, 63))) }  // DW_OP_shra
            case 0x27: try binary { $0 ^ $1 }  // DW_OP_xor
            case 0x28:  // DW_OP_bra
                let offset = Int16(bitPattern: try cursor.u16())
                if try pop() != 0 { try branch(by: offset) }
            case 0x29: try compare(==)  // DW_OP_eq
            case 0x2a: try compare(>=)  // DW_OP_ge
            case 0x2b: try compare(>)  // DW_OP_gt
            case 0x2c: try compare(<=)  // DW_OP_le
            case 0x2d: try compare(<)  // DW_OP_lt
            case 0x2e: try compare(!=)  // DW_OP_ne
            case 0x2f: try branch(by: Int16(bitPattern: try cursor.u16()))  // DW_OP_skip
            case 0x30...0x4f: try pushValue(UInt64(op - 0x30))  // DW_OP_lit0–31
            case 0x70...0x8f:  // DW_OP_breg0–31
                try pushValue(try register(Int(op - 0x70)) &+ UInt64(bitPattern: try cursor.sleb128()))
            case 0x92:  // DW_OP_bregx
                let reg = try cursor.uleb128()
                guard reg < 4096 else { throw malformed("register \(reg)") }
                try pushValue(try register(Int(reg)) &+ UInt64(bitPattern: try cursor.sleb128()))
            case 0x94:  // DW_OP_deref_size
                let size = Int(try cursor.u8())
                guard (1...8).contains(size) else { throw malformed("DW_OP_deref_size \(size)") }
                try pushValue(try memory(try pop(), size))
            case 0x96: break  // DW_OP_nop
            default:
                throw malformed("unsupported operation 0x\(String(op, radix: 16))")
            }
        }
        return try pop()
    }
}
