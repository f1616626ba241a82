/// The registers of one frame, by DWARF number; nil where the value is not known.
public struct UnwindRegisters: Sendable, Equatable {
    public var values: [UInt64?]

    public init(architecture: UnwindArchitecture) {
        values = [UInt64?](repeating: nil, count: architecture.registerCount)
    }

    public subscript(register: Int) -> UInt64? {
        get { register >= 0 && register < values.count ? values[register] : nil }
        set { if register >= 0 && register < values.count { values[register] = newValue } }
    }
}

/// An object file's unwind table and where it is loaded.
public struct UnwindModule: Sendable {
    public var table: UnwindTable
    /// Added to link-time addresses to get process addresses.
    public var loadBias: UInt64

    public init(table: UnwindTable, loadBias: UInt64) {
        self.table = table
        self.loadBias = loadBias
    }
}

/// How a frame's pc was found.
public enum UnwindMethod: String, Sendable {
    /// The registers handed in: the innermost frame.
    case registers
    /// The return address, by the CFI of the callee.
    case cfi
    /// The return address, by the callee's frame-pointer record (no CFI covered it).
    case framePointer
    /// The interrupted pc, read from the kernel's signal frame (by CFI or by recognising the trampoline).
    case signal
}

/// One native frame.
public struct UnwoundFrame: Sendable, Equatable {
    public var pc: UInt64
    public var method: UnwindMethod
    /// Where to look the frame up (symbols, lines): a return address points after the
    /// call, so the call instruction is at pc − 1; an interrupted pc is exact.
    public var lookupAddress: UInt64 { method == .cfi || method == .framePointer ? pc &- 1 : pc }
}

/// Why an unwind ended.
public enum UnwindStop: Sendable, Equatable {
    /// The return address rule is undefined: the thread's outermost frame (`_start`, `clone`).
    case outermostFrame
    /// A zero return address or frame pointer, which ends stacks built without CFI.
    case zeroReturnAddress
    case frameLimit
    /// Neither CFI nor a usable frame pointer for this pc.
    case noUnwindInformation(pc: UInt64)
    /// A read of the stack (or of a register save slot) failed.
    case unreadable(address: UInt64)
    /// A register the rules need is unknown.
    case unknownRegister(Int)
    /// The stack pointer went backwards or the frame repeated: garbage or a loop.
    case stackNotAdvancing
    case malformedCFI(String)
}

/// The result of one unwind: frames from innermost outwards, and why it stopped.
public struct UnwindResult: Sendable {
    public var frames: [UnwoundFrame]
    public var stop: UnwindStop
    /// Where the stack this unwind read ends, when it reached the thread's first frame: the
    /// outermost frame's CFA (its caller's stack pointer). Every stack read lay below it.
    public var stackEnd: UInt64? = nil
}

/// Walks native frames from a thread's registers: CFI where an object file has it, the
/// frame-pointer chain where not, and the kernel's signal frames. The stack is read through
/// `RemoteMemory` (a live process, a perf sample's copied stack, a core file); object files
/// are found by `modules`, which maps a process address to its module.
public struct NativeUnwinder {
    public var architecture: UnwindArchitecture
    public var maximumFrames: Int

    public init(architecture: UnwindArchitecture = .x86_64, maximumFrames: Int = 1024) {
        self.architecture = architecture
        self.maximumFrames = maximumFrames
    }

    public func unwind(registers initial: UnwindRegisters, memory: RemoteMemory,
                       modules: (UInt64) -> UnwindModule?) -> UnwindResult {
        let arch = architecture
        var registers = initial
        guard let firstPC = registers[arch.returnAddressColumn] else {
            return UnwindResult(frames: [], stop: .unknownRegister(arch.returnAddressColumn))
        }
        var frames = [UnwoundFrame(pc: firstPC, method: .registers)]
        while frames.count < maximumFrames {
            let frame = frames[frames.count - 1]
            let step: Step
            do {
                step = try self.step(frame: frame, registers: registers, memory: memory, modules: modules)
            } catch let error as UnwindStepError {
                // A zero frame pointer ends the chain at this frame's own stack pointer.
                let end = error.stop == .zeroReturnAddress ? registers[arch.stackPointer] : nil
                return UnwindResult(frames: frames, stop: error.stop, stackEnd: end)
            } catch let error as MemoryReadError {
                return UnwindResult(frames: frames, stop: .unreadable(address: UnwindStepError.address(of: error)))
            } catch {
                return UnwindResult(frames: frames, stop: .malformedCFI("\(error)"))
            }
            let callerSP = step.registers[arch.stackPointer]
            guard let callerPC = step.registers[arch.returnAddressColumn] else {
                return UnwindResult(frames: frames, stop: .outermostFrame, stackEnd: callerSP)
            }
            if callerPC == 0 { return UnwindResult(frames: frames, stop: .zeroReturnAddress, stackEnd: callerSP) }
            // The stack grows down: a caller's stack pointer is above its callee's, except
            // when a signal handler ran on an alternate stack.
            let oldSP = registers[arch.stackPointer] ?? 0
            let newSP = step.registers[arch.stackPointer] ?? 0
            if step.method != .signal && (newSP < oldSP || (newSP == oldSP && callerPC == frame.pc)) {
                return UnwindResult(frames: frames, stop: .stackNotAdvancing)
            }
            frames.append(UnwoundFrame(pc: callerPC, method: step.method))
            registers = step.registers
        }
        return UnwindResult(frames: frames, stop: .frameLimit)
    }

    private struct Step {
        var registers: UnwindRegisters
        var method: UnwindMethod
    }

    /// The caller's registers.
    private func step(frame: UnwoundFrame, registers: UnwindRegisters, memory: RemoteMemory,
                      modules: (UInt64) -> UnwindModule?) throws -> Step {
        let module = modules(frame.lookupAddress)
        if let module, let (row, fde) = try module.table.row(for: frame.lookupAddress &- module.loadBias) {
            let caller = try callerRegisters(row, registers: registers, memory: memory)
            return Step(registers: caller, method: fde.cie.isSignalFrame ? .signal : .cfi)
        }
        if let caller = try signalTrampoline(pc: frame.pc, module: module, registers: registers, memory: memory) {
            return Step(registers: caller, method: .signal)
        }
        return try framePointerStep(pc: frame.pc, registers: registers, memory: memory)
    }

    /// Applies one row: computes the CFA, then each register's value in the caller.
    public func callerRegisters(_ row: UnwindRow, registers: UnwindRegisters, memory: RemoteMemory) throws -> UnwindRegisters {
        let arch = architecture
        func value(_ register: Int) throws -> UInt64 {
            guard let value = registers[register] else { throw UnwindStepError(stop: .unknownRegister(register)) }
            return value
        }
        func read(_ address: UInt64, _ size: Int) throws -> UInt64 {
            var value: UInt64 = 0
            try withUnsafeMutableBytes(of: &value) { buffer in
                try memory.read(address, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size]))
            }
            return UInt64(littleEndian: value)
        }
        let cfa: UInt64
        switch row.cfa {
        case .registerOffset(let register, let offset): cfa = try value(register) &+ UInt64(bitPattern: offset)
        case .expression(let expression):
            cfa = try CFIExpression.evaluate(expression, push: nil, register: value, memory: read)
        }
        var caller = UnwindRegisters(architecture: arch)
        for register in 0..<arch.registerCount {
            switch row.registers[register] {
            case .undefined: caller[register] = nil
            case .sameValue: caller[register] = registers[register]
            case .offset(let offset): caller[register] = try read(cfa &+ UInt64(bitPattern: offset), arch.pointerSize)
            case .valueOffset(let offset): caller[register] = cfa &+ UInt64(bitPattern: offset)
            case .register(let other): caller[register] = try value(other)
            case .expression(let expression):
                let address = try CFIExpression.evaluate(expression, push: cfa, register: value, memory: read)
                caller[register] = try read(address, arch.pointerSize)
            case .valueExpression(let expression):
                caller[register] = try CFIExpression.evaluate(expression, push: cfa, register: value, memory: read)
            }
        }
        // The CFA is by definition the caller's stack pointer, unless a rule says otherwise.
        if row.registers[arch.stackPointer] == .sameValue { caller[arch.stackPointer] = cfa }
        return caller
    }

    /// A signal trampoline without CFI, recognised by its code: the interrupted registers
    /// are in the ucontext on the stack.
    private func signalTrampoline(pc: UInt64, module: UnwindModule?, registers: UnwindRegisters,
                          memory: RemoteMemory) throws -> UnwindRegisters? {
        guard let trampoline = architecture.signalTrampoline, let sp = registers[architecture.stackPointer] else { return nil }
        var code: [UInt8]?
        if let module { code = module.table.code(at: pc &- module.loadBias, count: trampoline.code.count) }
        if code == nil { code = try? memory.readBytes(pc, count: trampoline.code.count) }
        guard code == trampoline.code else { return nil }
        let base = sp &+ UInt64(bitPattern: trampoline.registersOffset)
        var caller = UnwindRegisters(architecture: architecture)
        for (register, slot) in trampoline.slotOfRegister.enumerated() {
            guard let slot else { continue }
            caller[register] = try memory.readPointer(base &+ UInt64(slot * architecture.pointerSize))
        }
        return caller
    }

    /// The frame-pointer record: [fp] = caller's fp, [fp + 8] = return address.
    private func framePointerStep(pc: UInt64, registers: UnwindRegisters, memory: RemoteMemory) throws -> Step {
        let arch = architecture
        guard let fp = registers[arch.framePointer], let sp = registers[arch.stackPointer] else {
            throw UnwindStepError(stop: .noUnwindInformation(pc: pc))
        }
        if fp == 0 { throw UnwindStepError(stop: .zeroReturnAddress) }
        guard fp >= sp, fp % UInt64(arch.pointerSize) == 0 else { throw UnwindStepError(stop: .noUnwindInformation(pc: pc)) }
        var caller = UnwindRegisters(architecture: arch)
        caller[arch.framePointer] = try memory.readPointer(fp &+ UInt64(bitPattern: arch.savedFramePointerOffset))
        caller[arch.returnAddressColumn] = try memory.readPointer(fp &+ UInt64(bitPattern: arch.savedReturnAddressOffset))
        caller[arch.stackPointer] = fp &+ UInt64(bitPattern: arch.callerStackPointerOffset)
        return Step(registers: caller, method: .framePointer)
    }
}

/// Ends an unwind from inside a step.
struct UnwindStepError: Error {
    var stop: UnwindStop

    static func address(of error: MemoryReadError) -> UInt64 {
        switch error {
        case .unmapped(let address, _), .tooLarge(let address, _): return address
        default: return 0
        }
    }
}
