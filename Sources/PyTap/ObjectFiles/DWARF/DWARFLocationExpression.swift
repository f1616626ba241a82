/// Evaluates the DW_AT_data_member_location expressions of DWARF 2/3 producers
/// (`DW_OP_plus_uconst N`, or constants and DW_OP_plus), with the address of the
/// containing object taken as 0 so the result is the member's offset.
enum DWARFLocationExpression {
    static func memberOffset(_ expression: UnsafeRawBufferPointer) throws -> Int {
        typealias Op = DWARFConstant.Operation
        var cursor = DWARFCursor(bytes: expression, section: .info, offset: 0, end: expression.count)
        // The spec pushes the containing object's address before evaluating.
        var stack: [Int64] = [0]
        func pop() throws -> Int64 {
            guard let value = stack.popLast() else { throw DWARFError.malformed("member location expression pops an empty stack") }
            return value
        }
        while !cursor.isAtEnd {
            guard stack.count < 64 else { throw DWARFError.malformed("member location expression too deep") }
            let op = try cursor.u8()
            switch op {
            case Op.plusUconst: stack.append(try pop() &+ Int64(bitPattern: try cursor.uleb128()))
            case Op.constu: stack.append(Int64(bitPattern: try cursor.uleb128()))
            case Op.consts: stack.append(try cursor.sleb128())
            case Op.const1u: stack.append(Int64(try cursor.u8()))
            case Op.const1s: stack.append(Int64(Int8(bitPattern: try cursor.u8())))
            case Op.const2u: stack.append(Int64(try cursor.u16()))
            case Op.const2s: stack.append(Int64(Int16(bitPattern: try cursor.u16())))
            case Op.const4u: stack.append(Int64(try cursor.u32()))
            case Op.const4s: stack.append(Int64(Int32(bitPattern: try cursor.u32())))
            case Op.const8u, Op.const8s: stack.append(Int64(bitPattern: try cursor.u64()))
            case Op.lit0...Op.lit31: stack.append(Int64(op - Op.lit0))
            case Op.plus:
                let right = try pop()
                stack.append(try pop() &+ right)
            case Op.minus:
                let right = try pop()
                stack.append(try pop() &- right)
            case Op.nop: break
            default:
                throw DWARFError.malformed("unsupported operation 0x\(String(op, radix: 16)) in a member location expression")
            }
        }
        return Int(truncatingIfNeeded: try pop())
    }
}
