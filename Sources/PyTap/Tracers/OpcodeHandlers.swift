import CBPF

/// Where the bytecode handlers that start and leave a Python frame lie in a 3.11+
/// interpreter: the opcode numbers per version (data), and each handler's address from the
/// build's `opcode_targets` table (a local symbol of computed-goto builds, in `.symtab` or
/// the debug file), read from the target's memory, where it holds relocated addresses.
public struct OpcodeHandlers {
    /// Opcodes whose handler starts (or resumes) the current frame, and those whose handler
    /// leaves it (return, yield), specialised and instrumented variants included: each has
    /// a handler of its own. Numbers from each version's `opcode` module.
    struct Opcodes {
        var versions: ClosedRange<PythonMinorVersion>
        var starts: [(name: String, number: Int)]
        var leaves: [(name: String, number: Int)]
    }

    static let opcodes: [Opcodes] = [
        Opcodes(versions: PythonMinorVersion(3, 11)...PythonMinorVersion(3, 11),
                starts: [("RESUME", 151), ("RESUME_QUICK", 150)],
                leaves: [("RETURN_VALUE", 83), ("YIELD_VALUE", 86)]),
        Opcodes(versions: PythonMinorVersion(3, 12)...PythonMinorVersion(3, 12),
                starts: [("RESUME", 151), ("INSTRUMENTED_RESUME", 240)],
                leaves: [("RETURN_VALUE", 83), ("RETURN_CONST", 121), ("INSTRUMENTED_RETURN_VALUE", 242),
                         ("INSTRUMENTED_RETURN_CONST", 247), ("YIELD_VALUE", 150), ("INSTRUMENTED_YIELD_VALUE", 243)]),
        Opcodes(versions: PythonMinorVersion(3, 13)...PythonMinorVersion(3, 13),
                starts: [("RESUME", 149), ("RESUME_CHECK", 207), ("INSTRUMENTED_RESUME", 236)],
                leaves: [("RETURN_VALUE", 36), ("RETURN_CONST", 103), ("INSTRUMENTED_RETURN_VALUE", 239),
                         ("INSTRUMENTED_RETURN_CONST", 240), ("YIELD_VALUE", 118), ("INSTRUMENTED_YIELD_VALUE", 241)]),
        Opcodes(versions: PythonMinorVersion(3, 14)...PythonMinorVersion(3, 14),
                starts: [("RESUME", 128), ("RESUME_CHECK", 196), ("INSTRUMENTED_RESUME", 245)],
                leaves: [("RETURN_VALUE", 35), ("INSTRUMENTED_RETURN_VALUE", 246), ("YIELD_VALUE", 120),
                         ("INSTRUMENTED_YIELD_VALUE", 247)]),
        Opcodes(versions: PythonMinorVersion(3, 15)...PythonMinorVersion(3, 15),
                starts: [("RESUME", 128), ("RESUME_CHECK", 200), ("RESUME_CHECK_JIT", 201), ("INSTRUMENTED_RESUME", 244)],
                leaves: [("RETURN_VALUE", 33), ("INSTRUMENTED_RETURN_VALUE", 245), ("YIELD_VALUE", 119),
                         ("INSTRUMENTED_YIELD_VALUE", 246)]),
    ]

    /// Called in the frame an exception has reached, before its handler is looked for
    /// (the frames it left are gone by then): exported by every 3.x.
    static let raiseFunction = "PyTraceBack_Here"

    /// One place to probe: a file offset in the runtime object, and what it means.
    public struct Probe: Equatable, Sendable {
        public var name: String
        public var fileOffset: UInt64
        public var kind: pytap_pyframe_kind
    }

    public let probes: [Probe]

    /// Whether `version` has handlers pytap knows.
    public static func supports(_ version: PythonMinorVersion) -> Bool { opcodes.contains { $0.versions.contains(version) } }

    public init(target: PythonTarget, object: LoadedObject) throws {
        let minor = PythonMinorVersion(target.version.major, target.version.minor)
        guard let table = OpcodeHandlers.opcodes.first(where: { $0.versions.contains(minor) }) else {
            throw PyCallGraphError.unsupportedVersion(target.version)
        }
        // The interpreter's own map of each opcode to its unspecialised form, where it has one:
        // a build numbered otherwise than the table (a pre-release) is refused, not misread.
        if let deopt = object.symbol(named: "_PyOpcode_Deopt"), deopt.size == 256,
           let bytes = try? target.memory.readBytes(deopt.value &+ object.loadBias, count: 256),
           let mismatch = OpcodeHandlers.mismatch(of: table, deoptimized: bytes) {
            throw PyCallGraphError.noOpcodeTable(path: object.path, why: "its opcode numbers are not those of Python \(minor) (\(mismatch))")
        }
        let symbol = try OpcodeHandlers.targetsSymbol(in: object)
        let words: [UInt64]
        do {
            let bytes = try target.memory.readBytes(symbol.value &+ object.loadBias, count: 256 * 8)
            words = (0..<256).map { index in (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[index * 8 + $1]) << (8 * UInt64($1)) } }
        } catch {
            throw PyCallGraphError.noOpcodeTable(path: object.path, why: "\(symbol.name) is unreadable in the process")
        }
        let executable = object.elf.loadSegments.filter { $0.flags & 1 != 0 }  // PF_X
        var probes = [Probe]()
        var seen = [UInt64: pytap_pyframe_kind]()
        for (kind, opcodes) in [(PYTAP_PYFRAME_START, table.starts), (PYTAP_PYFRAME_LEAVE, table.leaves)] {
            for (name, number) in opcodes {
                let address = words[number] &- object.loadBias
                guard executable.contains(where: { address >= $0.virtualAddress && address - $0.virtualAddress < $0.fileSize }),
                      let offset = object.elf.fileOffset(ofVirtualAddress: address) else {
                    throw PyCallGraphError.noOpcodeTable(path: object.path, why: "the \(name) handler (\(symbol.name)[\(number)]) is outside the code")
                }
                // Two opcodes sharing one handler are probed once; a handler that would
                // both start and leave a frame means the table is not what pytap thinks.
                if let earlier = seen[offset] {
                    if earlier != kind { throw PyCallGraphError.noOpcodeTable(path: object.path, why: "\(name) shares its handler with an opcode of the other kind") }
                    continue
                }
                seen[offset] = kind
                probes.append(Probe(name: name, fileOffset: offset, kind: kind))
            }
        }
        guard let raise = object.symbol(named: OpcodeHandlers.raiseFunction), raise.value != 0,
              let raiseOffset = object.elf.fileOffset(ofVirtualAddress: raise.value) else {
            throw PyCallGraphError.noEvalFunction(OpcodeHandlers.raiseFunction, path: object.path)
        }
        probes.append(Probe(name: OpcodeHandlers.raiseFunction, fileOffset: raiseOffset, kind: PYTAP_PYFRAME_RAISE))
        self.probes = probes
    }

    /// Where `_PyOpcode_Deopt` (opcode → its unspecialised form) disagrees with `table`:
    /// the specialised forms of RESUME (`RESUME_*`) must map to RESUME, every other opcode
    /// of the table to itself. Nil when they agree.
    static func mismatch(of table: Opcodes, deoptimized: [UInt8]) -> String? {
        guard deoptimized.count == 256, let resume = table.starts.first(where: { $0.name == "RESUME" })?.number else { return "no RESUME" }
        for (name, number) in table.starts + table.leaves {
            let expected = name.hasPrefix("RESUME_") ? resume : number
            if Int(deoptimized[number]) != expected { return "\(name) is \(number) here, but the interpreter maps \(number) to \(deoptimized[number])" }
        }
        return nil
    }

    /// `opcode_targets` (a static array of 256 pointers in ceval.c): `opcode_targets.N` when
    /// the compiler renamed the local, `opcode_targets_table` in 3.15.
    static func targetsSymbol(in object: LoadedObject) throws -> ELFSymbol {
        let names = ["opcode_targets", "opcode_targets_table"]
        func isTable(_ symbol: ELFSymbol) -> Bool {
            guard symbol.type == ELFSymbol.typeObject, symbol.size == 256 * 8, symbol.value != 0 else { return false }
            return names.contains { symbol.name == $0 || (symbol.name.hasPrefix($0 + ".") && symbol.name.dropFirst($0.count + 1).allSatisfy(\.isNumber)) }
        }
        for elf in [object.elf, object.debugFile].compactMap({ $0 }) {
            let found = elf.allSymbols().filter(isTable)
            if found.count == 1 { return found[0] }
            if found.count > 1 { throw PyCallGraphError.noOpcodeTable(path: object.path, why: "\(found.count) symbols named opcode_targets") }
        }
        throw PyCallGraphError.noOpcodeTable(path: object.path, why: "no opcode_targets symbol (a build without computed gotos, or stripped: install the interpreter's debug symbols)")
    }
}
