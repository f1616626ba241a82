import PyTap
import XCTest

/// The unwinder over a fake stack: CFI, the frame-pointer fallback, signal frames with and
/// without CFI, and the ways an unwind ends.
final class NativeUnwinderTests: XCTestCase {
    let stackBase: UInt64 = 0x7ffd_0000_0000
    let stackSize = 0x2000

    /// One module of functions: (start, length, FDE instructions after the entry rule).
    private func module(_ functions: [(start: UInt64, length: UInt32, instructions: [UInt8])],
                        signal: Bool = false, bias: UInt64 = 0) -> UnwindModule {
        var writer = CFIWriter()
        let cie = writer.cie(augmentation: signal ? "zRS" : "zR", instructions: UnwindCFITests.entryInstructions)
        for function in functions {
            writer.fde(cie: cie, start: function.start, length: function.length, instructions: function.instructions)
        }
        let table = UnwindTable(architecture: .x86_64, ehFrame: writer.section(), header: nil, debugFrame: nil)
        return UnwindModule(table: table, loadBias: bias)
    }

    private func stack() -> FakeMemory {
        let memory = FakeMemory()
        memory.map(at: stackBase, size: stackSize)
        return memory
    }

    func testCFIThenSignalTrampolineThenExactPCThenFramePointer() throws {
        let memory = stack()
        let bias: UInt64 = 0x5555_0000_0000
        // F: after `push rbp` (CFA rsp+16, rbp at CFA−16). H: a function at its first instruction.
        let f: UInt64 = 0x1000, h: UInt64 = 0x2000
        let code = module([(f, 0x100, CFA.advance(1) + CFA.defCFAOffset(16) + CFA.offset(6, 2)),
                           (h, 0x100, [])], bias: bias)
        // The trampoline is in memory with no CFI (as in a libc without .eh_frame for it).
        let trampoline: UInt64 = 0x7f00_0000_1000
        memory.map(at: trampoline, size: 0x100)
        memory.write(UnwindArchitecture.x86_64.signalTrampoline!.code, at: trampoline)

        let rsp0 = stackBase + 0x100
        let savedRBP: UInt64 = 0x1234
        memory.writeInteger(savedRBP, at: rsp0)
        memory.writeInteger(trampoline, at: rsp0 + 8)
        // The ucontext right above: the interrupted pc is H's first byte, whose pc − 1 is no function.
        let rsp1 = rsp0 + 16
        let rsp2 = stackBase + 0x800, rbp2 = stackBase + 0x900
        let gregs = rsp1 + 40
        memory.writeInteger(bias + h, at: gregs + 16 * 8)
        memory.writeInteger(rsp2, at: gregs + 15 * 8)
        memory.writeInteger(rbp2, at: gregs + 10 * 8)
        memory.writeInteger(UInt64(0xbb), at: gregs + 11 * 8)
        // H at entry: its return address is at rsp2; its caller has no CFI, so rbp2's record is used.
        let pc3: UInt64 = 0x40_0000
        memory.writeInteger(pc3, at: rsp2)
        let pc4: UInt64 = 0x40_1000
        memory.writeInteger(UInt64(0), at: rbp2)
        memory.writeInteger(pc4, at: rbp2 + 8)

        let registers = UnwindRegisters.x86_64([X86.rip: bias + f + 0x10, X86.rsp: rsp0, X86.rbp: stackBase + 0x700])
        let result = NativeUnwinder().unwind(registers: registers, memory: memory) { address in
            address >= bias && address < bias + 0x10_0000 ? code : nil
        }
        XCTAssertEqual(result.frames.map(\.pc), [bias + f + 0x10, trampoline, bias + h, pc3, pc4])
        XCTAssertEqual(result.frames.map(\.method), [.registers, .cfi, .signal, .cfi, .framePointer])
        XCTAssertEqual(result.frames[2].lookupAddress, bias + h, "an interrupted pc is exact")
        XCTAssertEqual(result.frames[3].lookupAddress, pc3 - 1, "a return address is looked up at the call")
        XCTAssertEqual(result.stop, .zeroReturnAddress)
    }

    /// glibc's __restore_rt: an 'S' CIE whose rules read every register from the ucontext.
    func testSignalFrameDescribedByCFI() throws {
        let memory = stack()
        let restore: UInt64 = 0x3000
        var rules = CFA.defCFAExpression(Op.breg(7, 160) + Op.deref)  // CFA = saved rsp
        for (register, slot) in UnwindArchitecture.x86_64.signalTrampoline!.slotOfRegister.enumerated() {
            guard let slot, register != X86.rsp else { continue }
            rules += CFA.expression(UInt64(register), Op.breg(7, Int64(40 + slot * 8)))
        }
        let trampoline = module([(restore - 1, 0x10, rules)], signal: true)
        let interrupted: UInt64 = 0x7777
        let handler: UInt64 = 0x5000
        let handlerModule = module([(handler, 0x100, [])])
        let rsp0 = stackBase + 0x100
        memory.writeInteger(restore, at: rsp0)  // the handler's return address
        let uc = rsp0 + 8
        memory.writeInteger(interrupted, at: uc + 40 + 16 * 8)
        memory.writeInteger(stackBase + 0x1000, at: uc + 40 + 15 * 8)
        memory.writeInteger(UInt64(0x99), at: uc + 40 + 13 * 8)  // rax

        let registers = UnwindRegisters.x86_64([X86.rip: handler, X86.rsp: rsp0])
        let result = NativeUnwinder().unwind(registers: registers, memory: memory) { address in
            if address >= restore - 1 && address < restore + 0xf { return trampoline }
            if address >= handler && address < handler + 0x100 { return handlerModule }
            return nil
        }
        XCTAssertEqual(result.frames.map(\.pc), [handler, restore, interrupted])
        XCTAssertEqual(result.frames.map(\.method), [.registers, .cfi, .signal])
        XCTAssertEqual(result.stop, .zeroReturnAddress, "no CFI for 0x7777, and the saved rbp is 0")
    }

    func testOutermostFrameEndsTheUnwind() throws {
        let memory = stack()
        let start: UInt64 = 0x1000
        let code = module([(start, 0x40, CFA.undefined(16))])
        let result = NativeUnwinder().unwind(registers: .x86_64([X86.rip: start + 4, X86.rsp: stackBase]), memory: memory) { _ in code }
        XCTAssertEqual(result.frames.count, 1)
        XCTAssertEqual(result.stop, .outermostFrame)
        XCTAssertEqual(result.stackEnd, stackBase + 8, "the outermost frame's CFA (entry rule: rsp + 8)")
    }

    func testGarbageStacksEndWithAReason() throws {
        // A return address pointing back into the same function with the same stack pointer:
        // CFA = rsp + 0 reads the return address at rsp − 8 forever.
        let memory = stack()
        let loop: UInt64 = 0x1000
        let code = module([(loop, 0x40, CFA.defCFAOffset(0))])
        memory.writeInteger(loop + 8, at: stackBase + 0x100 - 8)
        var result = NativeUnwinder().unwind(registers: .x86_64([X86.rip: loop + 8, X86.rsp: stackBase + 0x100]), memory: memory) { _ in code }
        XCTAssertEqual(result.stop, .stackNotAdvancing)
        XCTAssertNil(result.stackEnd, "an unwind that did not reach the thread's first frame knows no stack end")

        // A frame-pointer chain that loops on itself advances the stack until the frame cap.
        memory.writeInteger(stackBase + 0x200, at: stackBase + 0x200)
        memory.writeInteger(UInt64(0x42_0000), at: stackBase + 0x208)
        result = NativeUnwinder().unwind(registers: .x86_64([X86.rip: 0x41_0000, X86.rsp: stackBase + 0x100, X86.rbp: stackBase + 0x200]),
                                         memory: memory) { _ in nil }
        XCTAssertEqual(result.frames.count, 2)
        XCTAssertEqual(result.stop, .noUnwindInformation(pc: 0x42_0000), "the record points to itself, below the new stack pointer")

        // Reads off the stack, unknown registers and a frame pointer below the stack pointer.
        result = NativeUnwinder().unwind(registers: .x86_64([X86.rip: 0x41_0000, X86.rsp: stackBase, X86.rbp: stackBase + 0x10_0000]),
                                         memory: memory) { _ in nil }
        XCTAssertEqual(result.stop, .unreadable(address: stackBase + 0x10_0000))
        result = NativeUnwinder().unwind(registers: .x86_64([X86.rip: 0x41_0000, X86.rsp: stackBase]), memory: memory) { _ in nil }
        XCTAssertEqual(result.stop, .noUnwindInformation(pc: 0x41_0000))
        let code2 = module([(0x1000, 0x40, CFA.defCFA(3, 8))])
        result = NativeUnwinder().unwind(registers: .x86_64([X86.rip: 0x1004, X86.rsp: stackBase]), memory: memory) { _ in code2 }
        XCTAssertEqual(result.stop, .unknownRegister(X86.rbx))
        result = NativeUnwinder().unwind(registers: .x86_64([X86.rip: 0x41_0000, X86.rsp: stackBase + 0x100, X86.rbp: stackBase]),
                                         memory: memory) { _ in nil }
        XCTAssertEqual(result.stop, .noUnwindInformation(pc: 0x41_0000), "fp below sp is not a frame record")
        XCTAssertEqual(NativeUnwinder().unwind(registers: UnwindRegisters(architecture: .x86_64), memory: memory) { _ in nil }.stop,
                       .unknownRegister(X86.rip))
    }

    func testFrameLimit() throws {
        let memory = stack()
        // A long frame-pointer chain: each record points 16 bytes up.
        var fp = stackBase + 0x100
        for index in 0..<100 {
            memory.writeInteger(fp + 16, at: fp)
            memory.writeInteger(UInt64(0x40_0000 + index), at: fp + 8)
            fp += 16
        }
        let result = NativeUnwinder(maximumFrames: 10).unwind(
            registers: .x86_64([X86.rip: 0x41_0000, X86.rsp: stackBase, X86.rbp: stackBase + 0x100]), memory: memory) { _ in nil }
        XCTAssertEqual(result.frames.count, 10)
        XCTAssertEqual(result.stop, .frameLimit)
        XCTAssertEqual(result.frames[1...].map(\.method), Array(repeating: .framePointer, count: 9))
    }
}
