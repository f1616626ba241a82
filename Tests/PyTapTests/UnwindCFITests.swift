import PyTap
import XCTest

/// The CFI parser and the CFA program interpreter on bytes assembled in the test.
final class UnwindCFITests: XCTestCase {
    /// The usual x86_64 CIE: CFA = rsp + 8, return address at CFA − 8.
    static let entryInstructions = CFA.defCFA(7, 8) + CFA.offset(16, 1)
    let functionStart: UInt64 = 0x40_1000

    private func onlyFDE(_ section: CFISection) throws -> FrameDescriptionEntry {
        let fdes = try section.entries().compactMap { entry -> FrameDescriptionEntry? in
            if case .fde(let fde) = entry { return fde }
            return nil
        }
        XCTAssertEqual(fdes.count, 1)
        return try XCTUnwrap(fdes.first)
    }

    func testEveryRegisterRuleKind() throws {
        var writer = CFIWriter()
        let cie = writer.cie(instructions: Self.entryInstructions)
        let pltLike = Op.breg(7, 16)
        writer.fde(cie: cie, start: functionStart, length: 0x40, instructions:
            CFA.advance(1) + CFA.defCFAOffset(16) + CFA.offset(6, 2)
            + CFA.advance(3) + CFA.defCFARegister(6)
            + CFA.advance(2) + CFA.undefined(3) + CFA.sameValue(12) + CFA.valueOffset(13, 1) + CFA.register(14, in: 1)
            + CFA.expression(15, pltLike) + CFA.valueExpression(5, Op.breg(7, 0) + Op.plusConstant(5)))
        let section = writer.section()
        let fde = try onlyFDE(section)
        XCTAssertEqual(fde.initialLocation, functionStart)
        XCTAssertEqual(fde.addressRange, 0x40)
        let program = CFIProgram(section: section, architecture: .x86_64)
        let rows = try program.rows(for: fde)
        XCTAssertEqual(rows.map(\.startAddress), [functionStart, functionStart + 1, functionStart + 4, functionStart + 6])

        XCTAssertEqual(rows[0].cfa, .registerOffset(register: X86.rsp, offset: 8))
        XCTAssertEqual(rows[0].rule(X86.rip), .offset(-8))
        XCTAssertEqual(rows[0].rule(X86.rbp), .sameValue)
        XCTAssertEqual(rows[1].cfa, .registerOffset(register: X86.rsp, offset: 16))
        XCTAssertEqual(rows[1].rule(X86.rbp), .offset(-16))
        XCTAssertEqual(rows[2].cfa, .registerOffset(register: X86.rbp, offset: 16))
        let last = rows[3]
        XCTAssertEqual(last.rule(X86.rbx), .undefined)
        XCTAssertEqual(last.rule(X86.r12), .sameValue)
        XCTAssertEqual(last.rule(X86.r13), .valueOffset(-8))
        XCTAssertEqual(last.rule(X86.r14), .register(X86.rdx))
        XCTAssertEqual(last.rule(X86.r15), .expression(pltLike))
        XCTAssertEqual(last.rule(X86.rdi), .valueExpression(Op.breg(7, 0) + Op.plusConstant(5)))

        // Rows by address: the row in effect is the last one starting at or before it.
        XCTAssertEqual(try program.row(for: fde, at: functionStart), rows[0])
        XCTAssertEqual(try program.row(for: fde, at: functionStart + 3), rows[1])
        XCTAssertEqual(try program.row(for: fde, at: functionStart + 5), rows[2])
        XCTAssertEqual(try program.row(for: fde, at: functionStart + 0x3f), rows[3])

        // Applying the last row to registers and a fake stack gives each rule's value.
        let memory = FakeMemory()
        let stack: UInt64 = 0x7ff0_0000
        memory.map(at: stack, size: 0x1000)
        let rbp = stack + 0x100, cfa = rbp + 16, rsp = stack + 0x80
        memory.writeInteger(UInt64(0x1111), at: cfa - 16)  // saved rbp
        memory.writeInteger(UInt64(0x40_2222), at: cfa - 8)  // return address
        memory.writeInteger(UInt64(0x1515), at: rsp + 16)  // r15 saved where the expression points
        let registers = UnwindRegisters.x86_64([X86.rsp: rsp, X86.rbp: rbp, X86.rbx: 3, X86.rdx: 0xd,
                                                X86.r12: 12, X86.r13: 13, X86.r14: 14, X86.r15: 15, X86.rip: functionStart + 0x10])
        let caller = try NativeUnwinder().callerRegisters(last, registers: registers, memory: memory)
        XCTAssertEqual(caller[X86.rip], 0x40_2222)
        XCTAssertEqual(caller[X86.rbp], 0x1111)
        XCTAssertEqual(caller[X86.rsp], cfa, "the CFA is the caller's stack pointer")
        XCTAssertNil(caller[X86.rbx], "undefined")
        XCTAssertEqual(caller[X86.r12], 12, "same value")
        XCTAssertEqual(caller[X86.r13], cfa - 8, "val_offset")
        XCTAssertEqual(caller[X86.r14], 0xd, "register")
        XCTAssertEqual(caller[X86.r15], 0x1515, "expression")
        XCTAssertEqual(caller[X86.rdi], rsp + 5, "val_expression")
    }

    func testRememberRestoreStateAndRestore() throws {
        var writer = CFIWriter()
        let cie = writer.cie(instructions: Self.entryInstructions + CFA.sameValue(6))
        writer.fde(cie: cie, start: functionStart, length: 0x20, instructions:
            CFA.advance(1) + CFA.defCFAOffset(16) + CFA.offset(6, 2) + CFA.offset(3, 3)
            + CFA.rememberState
            + CFA.advance(1) + CFA.defCFA(7, 8) + CFA.restore(6) + CFA.restoreExtended(3)
            + CFA.advance(1) + CFA.restoreState
            + CFA.advance(1) + CFA.nop)
        let section = writer.section()
        let rows = try CFIProgram(section: section, architecture: .x86_64).rows(for: try onlyFDE(section))
        XCTAssertEqual(rows.count, 5)
        XCTAssertEqual(rows[2].cfa, .registerOffset(register: X86.rsp, offset: 8))
        XCTAssertEqual(rows[2].rule(X86.rbp), .sameValue, "restored to the CIE's rule")
        XCTAssertEqual(rows[2].rule(X86.rbx), .sameValue, "restored to the default")
        XCTAssertEqual(rows[3].startAddress, functionStart + 3, "restore_state keeps the location")
        XCTAssertEqual(rows[3].cfa, .registerOffset(register: X86.rsp, offset: 16), "restore_state brings back the CFA")
        XCTAssertEqual(rows[3].rule(X86.rbp), .offset(-16))
        XCTAssertEqual(rows[3].rule(X86.rbx), .offset(-24))
        XCTAssertEqual(rows[4], { var row = rows[3]; row.startAddress = functionStart + 4; return row }())
    }

    func testDefCFAVariantsAdvancesAndExtendedOffsets() throws {
        // Code alignment 4 and data alignment −8 show which operands are factored. set_loc
        // takes the FDE's encoding, so an absolute-address CIE serves for it.
        var absolute = CFIWriter()
        let absoluteCIE = absolute.cie(codeAlignment: 4, augmentationData: [0x00], instructions: Self.entryInstructions)
        absolute.fde(cie: absoluteCIE, addressBytes: { _ in CFIWriter.u64(self.functionStart) + CFIWriter.u64(0x10_0000) },
                     instructions: CFA.advance(1) + CFA.setLocation(absolute: functionStart + 0x5000) + CFA.defCFAExpression(Op.pltCFA))
        var plain = CFIWriter()
        let plainCIE = plain.cie(codeAlignment: 4, instructions: Self.entryInstructions)
        plain.fde(cie: plainCIE, start: functionStart, length: 0x10_0000, instructions:
            CFA.advance1(2) + CFA.defCFASigned(6, -3)
            + CFA.advance2(0x100) + CFA.defCFAOffsetSigned(-4)
            + CFA.advance4(0x1000) + CFA.offsetExtended(3, 2) + CFA.offsetExtendedSigned(12, -1)
            + CFA.negativeOffsetExtended(13, 1) + CFA.valueOffsetSigned(14, 2) + CFA.argumentsSize(16))
        let plainSection = plain.section()
        let rows = try CFIProgram(section: plainSection, architecture: .x86_64).rows(for: try onlyFDE(plainSection))
        XCTAssertEqual(rows.map(\.startAddress), [functionStart, functionStart + 8, functionStart + 0x408, functionStart + 0x4408])
        XCTAssertEqual(rows[1].cfa, .registerOffset(register: X86.rbp, offset: 24))
        XCTAssertEqual(rows[2].cfa, .registerOffset(register: X86.rbp, offset: 32))
        XCTAssertEqual(rows[3].rule(X86.rbx), .offset(-16))
        XCTAssertEqual(rows[3].rule(X86.r12), .offset(8))
        XCTAssertEqual(rows[3].rule(X86.r13), .offset(8), "GNU_negative_offset_extended negates")
        XCTAssertEqual(rows[3].rule(X86.r14), .valueOffset(-16))
        XCTAssertEqual(rows[3].argumentsSize, 16)

        let absoluteSection = absolute.section()
        let absoluteRows = try CFIProgram(section: absoluteSection, architecture: .x86_64).rows(for: try onlyFDE(absoluteSection))
        XCTAssertEqual(absoluteRows.map(\.startAddress), [functionStart, functionStart + 4, functionStart + 0x5000])
        XCTAssertEqual(absoluteRows[2].cfa, .expression(Op.pltCFA))
    }

    func testPLTExpressionDependsOnTheInstructionInTheEntry() throws {
        let rsp: UInt64 = 0x7ff0_0100
        for (rip, expected) in [(UInt64(0x1020), rsp + 8), (0x102a, rsp + 8), (0x102b, rsp + 16), (0x102f, rsp + 16)] {
            let value = try CFIExpression.evaluate(Op.pltCFA, push: nil, register: { register in
                switch register {
                case X86.rsp: return rsp
                case X86.rip: return rip
                default: throw MemoryReadError.unmapped(address: 0, length: 0)
                }
            }, memory: { _, _ in 0 })
            XCTAssertEqual(value, expected, "rip 0x\(String(rip, radix: 16))")
        }
    }

    func testExpressionOperations() throws {
        func run(_ expression: [UInt8], push: UInt64? = nil) throws -> UInt64 {
            try CFIExpression.evaluate(expression, push: push, register: { UInt64($0) * 0x100 },
                                       memory: { address, size in size == 8 ? address &+ 1 : (address &+ 1) & ((1 << (8 * UInt64(size))) - 1) })
        }
        XCTAssertEqual(try run(Op.lit(7) + Op.lit(3) + [0x1c]), 4, "minus")
        XCTAssertEqual(try run(Op.lit(7) + Op.lit(3) + [0x1e]), 21, "mul")
        XCTAssertEqual(try run(Op.lit(7) + Op.lit(2) + [0x1b]), 3, "div")
        XCTAssertEqual(try run(Op.lit(7) + Op.lit(3) + [0x1d]), 1, "mod")
        XCTAssertEqual(try run(Op.lit(1) + Op.lit(2) + Op.lit(3) + [0x17] + [0x13] + [0x13]), 3, "rot moves the top to third")
        XCTAssertEqual(try run(Op.lit(1) + Op.lit(2) + [0x16]), 1, "swap")
        XCTAssertEqual(try run(Op.lit(5) + Op.lit(9) + [0x14]), 5, "over")
        XCTAssertEqual(try run(Op.lit(5) + Op.lit(9) + [0x15, 1]), 5, "pick")
        XCTAssertEqual(try run(Op.lit(5) + [0x12] + Op.plus), 10, "dup")
        XCTAssertEqual(try run([0x11] + LEB.signed(-16) + [0x19]), 16, "consts, abs")
        XCTAssertEqual(try run(Op.lit(1) + [0x1f]), UInt64.max, "neg")
        XCTAssertEqual(try run([0x10] + LEB.unsigned(0xf0) + Op.lit(4) + [0x25]), 0xf, "shr")
        XCTAssertEqual(try run([0x11] + LEB.signed(-32) + Op.lit(4) + [0x26]), UInt64(bitPattern: -2), "shra")
        XCTAssertEqual(try run([0x0c, 0x0f, 0, 0, 0] + [0x08, 0xff] + [0x21]), 0xff, "const4u, const1u, or")
        XCTAssertEqual(try run([0x09, 0xff]), UInt64.max, "const1s")
        XCTAssertEqual(try run(Op.lit(6) + Op.lit(3) + [0x27]), 5, "xor")
        XCTAssertEqual(try run(Op.lit(0) + [0x20]), UInt64.max, "not")
        for (op, expected) in [(0x29, 0), (0x2a, 0), (0x2b, 0), (0x2c, 1), (0x2d, 1), (0x2e, 1)] as [(UInt8, UInt64)] {
            XCTAssertEqual(try run(Op.lit(2) + Op.lit(3) + [op]), expected, "comparison 0x\(String(op, radix: 16))")
        }
        // bra over a lit1 when the condition holds; skip unconditionally.
        XCTAssertEqual(try run(Op.lit(9) + Op.lit(1) + [0x28, 1, 0] + Op.lit(1) + [0x96]), 9, "bra taken")
        XCTAssertEqual(try run(Op.lit(9) + [0x2f, 1, 0] + Op.lit(1)), 9, "skip")
        XCTAssertEqual(try run(Op.breg(3, -0x10)), 0x2f0, "breg")
        XCTAssertEqual(try run(Op.bregx(16, 8)), 0x1008, "bregx")
        XCTAssertEqual(try run(Op.lit(4) + Op.deref), 5, "deref")
        XCTAssertEqual(try run([0x10] + LEB.unsigned(0x1ff) + Op.derefSize(1)), 0, "deref_size truncates")
        XCTAssertEqual(try run([], push: 42), 42, "the pushed CFA")
        XCTAssertEqual(try run([0x03] + CFIWriter.u64(0x1234)), 0x1234, "addr")

        XCTAssertThrowsError(try run(Op.plus), "empty stack")
        XCTAssertThrowsError(try run(Op.lit(1) + Op.lit(0) + [0x1b]), "division by zero")
        XCTAssertThrowsError(try run([0x2f, 0xfd, 0xff]), "an endless loop hits the step cap")
        XCTAssertThrowsError(try run([0x2f, 0x00, 0x10]), "a branch out of the expression")
        XCTAssertThrowsError(try run([0x50]), "DW_OP_reg0 is not a CFI operation")
        XCTAssertThrowsError(try run([0x0c, 0x01]), "truncated operand")
        XCTAssertThrowsError(try run(Array(repeating: 0x30, count: 65)), "stack cap")
    }

    func testMalformedProgramsAreErrors() throws {
        for instructions in [CFA.restoreState, [0x3f], CFA.defCFAExpression(Op.lit(1)) + CFA.defCFAOffset(8), [0x0f, 0x7f]] {
            var writer = CFIWriter()
            let cie = writer.cie(instructions: Self.entryInstructions)
            writer.fde(cie: cie, start: functionStart, length: 0x10, instructions: instructions)
            let section = writer.section()
            XCTAssertThrowsError(try CFIProgram(section: section, architecture: .x86_64).rows(for: try onlyFDE(section)),
                                 "\(instructions)")
        }
        var deep = CFIWriter()
        let cie = deep.cie(instructions: Self.entryInstructions)
        deep.fde(cie: cie, start: functionStart, length: 0x10, instructions: Array(repeating: 0x0a, count: 65))
        let section = deep.section()
        XCTAssertThrowsError(try CFIProgram(section: section, architecture: .x86_64).rows(for: try onlyFDE(section)))
        // A length running past the section, and a CIE pointer before the section.
        XCTAssertThrowsError(try CFISection(ehFrame: true, copying: [0x40, 0, 0, 0, 0, 0, 0, 0], address: 0).entries())
        XCTAssertThrowsError(try CFISection(ehFrame: true, copying: [0x08, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0], address: 0).entries())
    }

    func testPointerEncodings() throws {
        let start: UInt64 = 0x40_1230
        let dataBase: UInt64 = 0x60_0000
        let textBase: UInt64 = 0x40_0000
        let slot: UInt64 = 0x60_0040  // where an indirect pointer's target is stored
        func s4(_ v: Int64) -> [UInt8] { CFIWriter.sdata4(v) }
        func u(_ v: UInt64, _ size: Int) -> [UInt8] { Array(CFIWriter.u64(v).prefix(size)) }
        // (encoding, bytes of pc_begin for a field at `field`, bytes of pc_range)
        let cases: [(UInt8, (UInt64) -> [UInt8], [UInt8])] = [
            (0x00, { _ in u(start, 8) }, u(0x20, 8)),
            (0x01, { _ in LEB.unsigned(start) }, LEB.unsigned(0x20)),
            (0x02, { _ in u(0x1230, 2) }, u(0x20, 2)),  // udata2 truncates: start is 0x1230 then
            (0x03, { _ in u(start, 4) }, u(0x20, 4)),
            (0x04, { _ in u(start, 8) }, u(0x20, 8)),
            (0x09, { _ in LEB.signed(Int64(start)) }, LEB.signed(0x20)),
            (0x0a, { _ in u(0x1230, 2) }, u(0x20, 2)),
            (0x0b, { _ in s4(Int64(start)) }, s4(0x20)),
            (0x0c, { _ in u(start, 8) }, u(0x20, 8)),
            (0x1b, { field in s4(Int64(bitPattern: start &- field)) }, s4(0x20)),
            (0x1c, { field in u(start &- field, 8) }, u(0x20, 8)),
            (0x19, { field in LEB.signed(Int64(bitPattern: start &- field)) }, LEB.signed(0x20)),
            (0x12, { field in u(UInt64(UInt16(truncatingIfNeeded: start &- field)), 2) }, u(0x20, 2)),
            (0x3b, { _ in s4(Int64(start) - Int64(dataBase)) }, s4(0x20)),
            (0x23, { _ in u(start - textBase, 4) }, u(0x20, 4)),
            (0x9b, { field in s4(Int64(bitPattern: slot &- field)) }, s4(0x20)),  // indirect pcrel sdata4
        ]
        for (encoding, pcBegin, pcRange) in cases {
            var writer = CFIWriter()
            let cie = writer.cie(augmentationData: [encoding], instructions: Self.entryInstructions)
            writer.fde(cie: cie, addressBytes: { field in pcBegin(field) + pcRange }, instructions: [])
            var section = writer.section(readPointer: { address in address == slot ? start : nil })
            section.dataBase = dataBase
            section.textBase = textBase
            let fde = try onlyFDE(section)
            let expected = encoding & 0x0f == 0x02 || encoding & 0x0f == 0x0a ? 0x1230 : start
            if encoding == 0x12 {
                XCTAssertEqual(fde.initialLocation & 0xffff, start & 0xffff, "encoding 0x12")
            } else {
                XCTAssertEqual(fde.initialLocation, expected, "encoding 0x\(String(encoding, radix: 16))")
            }
            XCTAssertEqual(fde.addressRange, 0x20, "encoding 0x\(String(encoding, radix: 16))")
        }
        // datarel without a base, an unknown format, an unreadable indirect pointer: errors.
        for (encoding, bytes) in [(UInt8(0x3b), s4(0) + s4(0x20)), (0x0d, s4(0) + s4(0x20)), (0x9b, s4(0) + s4(0x20))] {
            var writer = CFIWriter()
            let cie = writer.cie(augmentationData: [encoding], instructions: [])
            writer.fde(cie: cie, addressBytes: { _ in bytes }, instructions: [])
            XCTAssertThrowsError(try writer.section().entries(), "encoding 0x\(String(encoding, radix: 16))")
        }
        // aligned: the address starts at the next 8-byte boundary of the section.
        var aligned = CFIWriter()
        let cie = aligned.cie(augmentationData: [0x50], instructions: [])
        aligned.fde(cie: cie, addressBytes: { field in
            [UInt8](repeating: 0, count: Int((8 - field % 8) % 8)) + u(start, 8) + u(0x20, 8)
        }, instructions: [])
        let fde = try onlyFDE(aligned.section())
        XCTAssertEqual(fde.initialLocation, start)
    }

    func testAugmentations() throws {
        var writer = CFIWriter()
        // zPLR: personality indirect pcrel sdata4, LSDA pcrel sdata4, FDEs pcrel sdata4.
        let personalityField = writer.address + 4 + 4 + 1 + 5 + 1 + 1 + 1 + 1 + 1  // after the encoding byte
        let cie = writer.cie(augmentation: "zPLR", augmentationData: [0x9b] + CFIWriter.sdata4(0x200) + [0x1b, 0x1b],
                             instructions: Self.entryInstructions)
        let lsda: UInt64 = 0x50_0000
        writer.fde(cie: cie, addressBytes: { field in
            CFIWriter.sdata4(Int64(bitPattern: self.functionStart &- field)) + CFIWriter.sdata4(0x30)
        }, augmentationData: nil, instructions: [])
        // The FDE's augmentation data (length + LSDA) must be written by hand here.
        var withLSDA = CFIWriter()
        let cie2 = withLSDA.cie(augmentation: "zPLR", augmentationData: [0x9b] + CFIWriter.sdata4(0x200) + [0x1b, 0x1b],
                                instructions: Self.entryInstructions)
        withLSDA.fde(cie: cie2, addressBytes: { field in
            CFIWriter.sdata4(Int64(bitPattern: self.functionStart &- field)) + CFIWriter.sdata4(0x30)
                + [4] + CFIWriter.sdata4(Int64(bitPattern: lsda &- (field + 9)))
        }, augmentationData: nil, instructions: CFA.advance(1) + CFA.defCFAOffset(16))
        let section = withLSDA.section()
        let fde = try onlyFDE(section)
        XCTAssertEqual(fde.cie.augmentation, "zPLR")
        XCTAssertEqual(fde.cie.personality, personalityField + 0x200, "personality slot address, not followed")
        XCTAssertEqual(fde.lsda, lsda)
        XCTAssertEqual(fde.initialLocation, functionStart)
        XCTAssertEqual(try CFIProgram(section: section, architecture: .x86_64).rows(for: fde).count, 2)
        _ = writer

        // zRS: a signal frame; an unknown letter after z is skipped by length; no z: unknown is an error.
        var signal = CFIWriter()
        let signalCIE = signal.cie(augmentation: "zRS", instructions: Self.entryInstructions)
        signal.fde(cie: signalCIE, start: functionStart, length: 0x10, instructions: [])
        XCTAssertTrue(try onlyFDE(signal.section()).cie.isSignalFrame)
        var unknown = CFIWriter()
        let unknownCIE = unknown.cie(augmentation: "zRX", augmentationData: [0x1b, 0xee, 0xee], instructions: Self.entryInstructions)
        unknown.fde(cie: unknownCIE, start: functionStart, length: 0x10, instructions: [])
        XCTAssertEqual(try onlyFDE(unknown.section()).instructions.count % 1, 0)
        var bad = CFIWriter()
        bad.cie(augmentation: "Q", instructions: [])
        XCTAssertThrowsError(try bad.section().entries())
    }

    func testDebugFrameVersionsAndDWARF64() throws {
        for (version, dwarf64) in [(UInt8(1), false), (3, false), (4, false), (4, true)] {
            var writer = CFIWriter(ehFrame: false, dwarf64: dwarf64)
            writer.bytes = [0, 0, 0, 0, 0, 0, 0, 0]  // something before: CIE pointers are section offsets
            writer.bytes = []
            let cie = writer.cie(version: version, augmentation: "", returnAddress: 16, instructions: Self.entryInstructions)
            writer.fde(cie: cie, addressBytes: { _ in CFIWriter.u64(self.functionStart) + CFIWriter.u64(0x44) }, augmentationData: nil,
                       instructions: CFA.advance(4) + CFA.defCFAOffset(16))
            let section = writer.section()
            let fde = try onlyFDE(section)
            XCTAssertEqual(fde.cie.version, version)
            XCTAssertEqual(fde.initialLocation, functionStart, "version \(version) dwarf64 \(dwarf64)")
            XCTAssertEqual(fde.addressRange, 0x44)
            let rows = try CFIProgram(section: section, architecture: .x86_64).rows(for: fde)
            XCTAssertEqual(rows.last?.cfa, .registerOffset(register: X86.rsp, offset: 16))
            XCTAssertEqual(rows.last?.startAddress, functionStart + 4)
        }
    }

    func testTableFindsFDEsThroughTheHeaderByScanningAndInDebugFrame() throws {
        var writer = CFIWriter()
        let cie = writer.cie(instructions: Self.entryInstructions)
        let starts: [UInt64] = [0x40_3000, 0x40_1000, 0x40_2000]
        var offsets = [Int]()
        for start in starts {
            offsets.append(writer.fde(cie: cie, start: start, length: 0x100, instructions: CFA.advance(1) + CFA.defCFAOffset(UInt64(start >> 12))))
        }
        var debug = CFIWriter(ehFrame: false)
        let debugCIE = debug.cie(augmentation: "", instructions: Self.entryInstructions)
        debug.fde(cie: debugCIE, addressBytes: { _ in CFIWriter.u64(0x40_5000) + CFIWriter.u64(0x10) }, augmentationData: nil,
                  instructions: CFA.defCFAOffset(77))
        let headerAddress: UInt64 = 0x0f_0000
        let header = try EHFrameHeader(bytes: writer.header(at: headerAddress, entries: zip(starts, offsets).map { ($0, $1) }),
                                       address: headerAddress)
        XCTAssertEqual(header.ehFramePointer, writer.address)
        XCTAssertEqual(header.table?.map(\.location), starts.sorted())
        for withHeader in [true, false] {
            let table = UnwindTable(architecture: .x86_64, ehFrame: writer.section(), header: withHeader ? header : nil,
                                    debugFrame: debug.section())
            for start in starts {
                let row = try XCTUnwrap(try table.row(for: start + 0x80), "0x\(String(start, radix: 16)) header \(withHeader)")
                XCTAssertEqual(row.row.cfa, .registerOffset(register: X86.rsp, offset: Int64(start >> 12)))
                XCTAssertEqual(try table.row(for: start)?.row.cfa, .registerOffset(register: X86.rsp, offset: 8))
                XCTAssertNil(try table.row(for: start + 0x100), "past the FDE's end")
            }
            XCTAssertNil(try table.row(for: 0x40_0fff))
            XCTAssertEqual(try table.row(for: 0x40_5008)?.row.cfa, .registerOffset(register: X86.rsp, offset: 77), ".debug_frame")
        }
    }
}
