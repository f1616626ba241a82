/// Runs CFA programs (DWARF 5 §6.4.2): the CIE's initial instructions, then the FDE's,
/// giving the row that applies at an address. Registers beyond the architecture's tracked
/// set (e.g. vector registers) are parsed and ignored.
public struct CFIProgram {
    public let section: CFISection
    public let architecture: UnwindArchitecture
    /// DW_CFA_remember_state nesting allowed (real code uses one or two levels).
    static let maximumStateDepth = 64

    public init(section: CFISection, architecture: UnwindArchitecture) {
        self.section = section
        self.architecture = architecture
    }

    /// The row in effect at link-time `address`, which the FDE must cover.
    public func row(for fde: FrameDescriptionEntry, at address: UInt64) throws -> UnwindRow {
        var found: UnwindRow?
        try run(fde, until: address) { row in found = row }
        guard let found else { throw DWARFError.malformed("CFA program of FDE 0x\(String(fde.offset, radix: 16)) gives no row") }
        return found
    }

    /// Every row of the FDE's program, in order (the whole program runs).
    public func rows(for fde: FrameDescriptionEntry) throws -> [UnwindRow] {
        var rows = [UnwindRow]()
        try run(fde, until: nil) { row in
            if let last = rows.last, last.startAddress == row.startAddress { rows.removeLast() }
            rows.append(row)
        }
        return rows
    }

    /// Runs the program; `emit` gets each finished row (the last one emitted is the one in
    /// effect at `address`). With no address the whole program runs.
    private func run(_ fde: FrameDescriptionEntry, until address: UInt64?, emit: (UnwindRow) -> Void) throws {
        let cie = fde.cie
        let tracked = architecture.registerCount
        var initialRules = [RegisterRule](repeating: .sameValue, count: tracked)
        if cie.returnAddressColumn < tracked { initialRules[cie.returnAddressColumn] = .undefined }
        let row = UnwindRow(startAddress: fde.initialLocation,
                            cfa: .registerOffset(register: architecture.stackPointer, offset: 0), registers: initialRules)
        // The CIE's instructions define the rules DW_CFA_restore goes back to.
        var state = State(row: row, initial: nil)
        try execute(cie.instructions, fde: fde, state: &state, until: nil, emit: { _ in })
        state.initial = state.row
        state.row.startAddress = fde.initialLocation
        try execute(fde.instructions, fde: fde, state: &state, until: address, emit: emit)
        // Whether the program ended or the next row starts past `address`, this row is in effect.
        emit(state.row)
    }

    private struct State {
        var row: UnwindRow
        var initial: UnwindRow?
        var remembered: [UnwindRow] = []
    }

    /// Executes instructions; returns true when it stopped because the next row starts after `address`.
    @discardableResult
    private func execute(_ range: Range<Int>, fde: FrameDescriptionEntry, state: inout State, until address: UInt64?,
                         emit: (UnwindRow) -> Void) throws -> Bool {
        let cie = fde.cie
        var cursor = section.cursor(at: range.lowerBound, end: range.upperBound)
        let kindName = section.kind.name

        func advance(to location: UInt64) -> Bool {
            if let address, location > address { return true }
            emit(state.row)
            state.row.startAddress = location
            return false
        }
        func advance(by delta: UInt64) -> Bool {
            advance(to: state.row.startAddress &+ delta &* cie.codeAlignment)
        }
        func set(_ register: UInt64, _ rule: RegisterRule) {
            if register < UInt64(state.row.registers.count) { state.row.registers[Int(register)] = rule }
        }
        func restore(_ register: UInt64) throws {
            guard let initial = state.initial else {
                throw DWARFError.malformed("DW_CFA_restore in a CIE's initial instructions (\(kindName))")
            }
            if register < UInt64(state.row.registers.count) { state.row.registers[Int(register)] = initial.registers[Int(register)] }
        }
        func factored(_ value: UInt64) -> Int64 { Int64(bitPattern: value) &* cie.dataAlignment }
        func factored(_ value: Int64) -> Int64 { value &* cie.dataAlignment }
        func register(_ value: UInt64) throws -> Int {
            guard value < 4096 else { throw DWARFError.malformed("register \(value) in \(kindName)") }
            return Int(value)
        }
        func expressionBytes() throws -> [UInt8] {
            let length = try cursor.uleb128()
            guard length <= UInt64(cursor.remaining) else { throw cursor.truncated() }
            let start = cursor.offset
            try cursor.skip(Int(length))
            return Array(section.bytes[start..<cursor.offset])
        }
        func cfaOffset(_ offset: Int64) throws {
            guard case .registerOffset(let register, _) = state.row.cfa else {
                throw DWARFError.malformed("DW_CFA_def_cfa_offset after a CFA expression (\(kindName))")
            }
            state.row.cfa = .registerOffset(register: register, offset: offset)
        }

        while !cursor.isAtEnd {
            let opcode = try cursor.u8()
            let operand = UInt64(opcode & 0x3f)
            switch opcode >> 6 {
            case 1:  // DW_CFA_advance_loc
                if advance(by: operand) { return true }
                continue
            case 2:  // DW_CFA_offset
                set(operand, .offset(factored(try cursor.uleb128())))
                continue
            case 3:  // DW_CFA_restore
                try restore(operand)
                continue
            default: break
            }
            switch opcode {
            case 0x00: break  // DW_CFA_nop
            case 0x01:  // DW_CFA_set_loc
                var location: UInt64?
                if section.isEHFrame {
                    location = try PointerEncoding.read(cie.fdeEncoding, from: &cursor, section: section)
                } else {
                    location = try cursor.unsigned(size: cie.addressSize)
                }
                guard let location else { throw DWARFError.malformed("DW_CFA_set_loc without an address (\(kindName))") }
                if advance(to: location) { return true }
            case 0x02: if advance(by: UInt64(try cursor.u8())) { return true }  // DW_CFA_advance_loc1
            case 0x03: if advance(by: UInt64(try cursor.u16())) { return true }  // DW_CFA_advance_loc2
            case 0x04: if advance(by: UInt64(try cursor.u32())) { return true }  // DW_CFA_advance_loc4
            case 0x05: set(try cursor.uleb128(), .offset(factored(try cursor.uleb128())))  // DW_CFA_offset_extended
            case 0x06: try restore(try cursor.uleb128())  // DW_CFA_restore_extended
            case 0x07: set(try cursor.uleb128(), .undefined)  // DW_CFA_undefined
            case 0x08: set(try cursor.uleb128(), .sameValue)  // DW_CFA_same_value
            case 0x09:  // DW_CFA_register
                let target = try cursor.uleb128()
                set(target, .register(try register(try cursor.uleb128())))
            case 0x0a:  // DW_CFA_remember_state
                guard state.remembered.count < CFIProgram.maximumStateDepth else {
                    throw DWARFError.malformed("DW_CFA_remember_state nested too deep (\(kindName))")
                }
                state.remembered.append(state.row)
            case 0x0b:  // DW_CFA_restore_state: rules and CFA come back, the location stays
                guard let saved = state.remembered.popLast() else {
                    throw DWARFError.malformed("DW_CFA_restore_state without DW_CFA_remember_state (\(kindName))")
                }
                let location = state.row.startAddress
                state.row = saved
                state.row.startAddress = location
            case 0x0c:  // DW_CFA_def_cfa
                let reg = try register(try cursor.uleb128())
                state.row.cfa = .registerOffset(register: reg, offset: Int64(bitPattern: try cursor.uleb128()))
            case 0x0d:  // DW_CFA_def_cfa_register
                let reg = try register(try cursor.uleb128())
                guard case .registerOffset(_, let offset) = state.row.cfa else {
                    throw DWARFError.malformed("DW_CFA_def_cfa_register after a CFA expression (\(kindName))")
                }
                state.row.cfa = .registerOffset(register: reg, offset: offset)
            case 0x0e: try cfaOffset(Int64(bitPattern: try cursor.uleb128()))  // DW_CFA_def_cfa_offset
            case 0x0f: state.row.cfa = .expression(try expressionBytes())  // DW_CFA_def_cfa_expression
            case 0x10:  // DW_CFA_expression
                let target = try cursor.uleb128()
                set(target, .expression(try expressionBytes()))
            case 0x11:  // DW_CFA_offset_extended_sf
                let target = try cursor.uleb128()
                set(target, .offset(factored(try cursor.sleb128())))
            case 0x12:  // DW_CFA_def_cfa_sf
                let reg = try register(try cursor.uleb128())
                state.row.cfa = .registerOffset(register: reg, offset: factored(try cursor.sleb128()))
            case 0x13: try cfaOffset(factored(try cursor.sleb128()))  // DW_CFA_def_cfa_offset_sf
            case 0x14:  // DW_CFA_val_offset
                let target = try cursor.uleb128()
                set(target, .valueOffset(factored(try cursor.uleb128())))
            case 0x15:  // DW_CFA_val_offset_sf
                let target = try cursor.uleb128()
                set(target, .valueOffset(factored(try cursor.sleb128())))
            case 0x16:  // DW_CFA_val_expression
                let target = try cursor.uleb128()
                set(target, .valueExpression(try expressionBytes()))
            case 0x2e: state.row.argumentsSize = try cursor.uleb128()  // DW_CFA_GNU_args_size
            case 0x2f:  // DW_CFA_GNU_negative_offset_extended
                let target = try cursor.uleb128()
                set(target, .offset(-factored(try cursor.uleb128())))
            case 0x2d: break  // DW_CFA_GNU_window_save / AARCH64_negate_ra_state: no effect on x86_64 rules
            default:
                throw DWARFError.malformed("unknown CFA instruction 0x\(String(opcode, radix: 16)) at 0x\(String(cursor.offset - 1, radix: 16)) of \(kindName)")
            }
        }
        return false
    }
}
