import Foundation
import Testing
import PyTap

/// Checks every built-in layout table against the DWARF of real interpreters on this
/// machine, with pytap's own DWARF reader: each entry's `dwarfPath` must resolve to the
/// table's value. Interpreters that are not installed are reported loudly and skipped.
struct LayoutTablesDWARFTests {
    /// One interpreter build and where its DWARF is.
    struct Interpreter: Sendable, CustomTestStringConvertible {
        enum DebugInfo: Sendable {
            /// A file that carries its own .debug_info (pyenv's libpython).
            case file(String)
            /// A separate debug file found by the build-id of `executable` under `root`
            /// (Debian's -dbg packages); `root` is "" for the host, else a chroot.
            case buildID(executable: String, root: String)
        }

        var name: String
        var version: PythonMinorVersion
        var debugInfo: DebugInfo

        var testDescription: String { "\(name) (table \(version))" }

        /// The DWARF file to read, or why there is none.
        func debugFile() -> Result<ELFFile, SkipReason> {
            switch debugInfo {
            case .file(let path):
                guard let elf = try? ELFFile(path: path) else { return .failure(SkipReason("\(path) not present")) }
                guard elf.hasDebugInfo else { return .failure(SkipReason("\(path) has no .debug_info")) }
                return .success(elf)
            case .buildID(let executable, let root):
                let hostPath = root + executable
                guard let elf = try? ELFFile(path: hostPath) else { return .failure(SkipReason("\(hostPath) not present")) }
                let locator = DebugFileLocator(roots: [root])
                guard let debug = locator.debugFile(for: elf, targetPath: executable) else {
                    let id = elf.buildIDHex ?? "none"
                    return .failure(SkipReason("no debug file for \(hostPath) (build-id \(id)) under \(root.isEmpty ? "/" : root)/usr/lib/debug"))
                }
                guard debug.hasDebugInfo else { return .failure(SkipReason("\(debug.path) has no .debug_info")) }
                return .success(debug)
            }
        }
    }

    struct SkipReason: Error {
        var text: String
        init(_ text: String) { self.text = text }
    }

    static let pyenv = "/root/.pyenv/versions"
    /// scripts/setup-matrix.sh's chroot (PYTAP_SID_CHROOT overrides, as for the pytest suite).
    static let sid = ProcessInfo.processInfo.environment["PYTAP_SID_CHROOT"] ?? "/var/lib/pytap/sid"

    static let interpreters: [Interpreter] = [
        Interpreter(name: "pyenv 2.7.18", version: .init(2, 7), debugInfo: .file("\(pyenv)/2.7.18/lib/libpython2.7.so.1.0")),
        Interpreter(name: "pyenv 3.6.15", version: .init(3, 6), debugInfo: .file("\(pyenv)/3.6.15/lib/libpython3.6m.so.1.0")),
        Interpreter(name: "pyenv 3.7.16", version: .init(3, 7), debugInfo: .file("\(pyenv)/3.7.16/lib/libpython3.7m.so.1.0")),
        Interpreter(name: "pyenv 3.8.18", version: .init(3, 8), debugInfo: .file("\(pyenv)/3.8.18/lib/libpython3.8.so.1.0")),
        Interpreter(name: "pyenv 3.9.18", version: .init(3, 9), debugInfo: .file("\(pyenv)/3.9.18/lib/libpython3.9.so.1.0")),
        Interpreter(name: "pyenv 3.10.13", version: .init(3, 10), debugInfo: .file("\(pyenv)/3.10.13/lib/libpython3.10.so.1.0")),
        Interpreter(name: "pyenv 3.11.7", version: .init(3, 11), debugInfo: .file("\(pyenv)/3.11.7/lib/libpython3.11.so.1.0")),
        Interpreter(name: "pyenv 3.12.1", version: .init(3, 12), debugInfo: .file("\(pyenv)/3.12.1/lib/libpython3.12.so.1.0")),
        Interpreter(name: "pyenv 3.13.0", version: .init(3, 13), debugInfo: .file("\(pyenv)/3.13.0/lib/libpython3.13.so.1.0")),
        Interpreter(name: "Debian /usr/bin/python3.11", version: .init(3, 11),
                    debugInfo: .buildID(executable: "/usr/bin/python3.11", root: "")),
        Interpreter(name: "sid /usr/bin/python3.13", version: .init(3, 13),
                    debugInfo: .buildID(executable: "/usr/bin/python3.13", root: sid)),
        Interpreter(name: "sid /usr/bin/python3.14", version: .init(3, 14),
                    debugInfo: .buildID(executable: "/usr/bin/python3.14", root: sid)),
        Interpreter(name: "sid /usr/bin/python3.15", version: .init(3, 15),
                    debugInfo: .buildID(executable: "/usr/bin/python3.15", root: sid)),
        // --with-pydebug builds carry their own DWARF: the same tables must match them.
        Interpreter(name: "Debian /usr/bin/python3.11d", version: .init(3, 11), debugInfo: .file("/usr/bin/python3.11d")),
        Interpreter(name: "sid /usr/bin/python3.13d", version: .init(3, 13), debugInfo: .file(sid + "/usr/bin/python3.13d")),
        Interpreter(name: "sid /usr/bin/python3.14d", version: .init(3, 14), debugInfo: .file(sid + "/usr/bin/python3.14d")),
        Interpreter(name: "sid /usr/bin/python3.15d", version: .init(3, 15), debugInfo: .file(sid + "/usr/bin/python3.15d")),
    ]

    @Test("Every layout table entry matches the interpreter's DWARF", arguments: interpreters)
    func tableMatchesDWARF(_ interpreter: Interpreter) throws {
        let table = try #require(LayoutTables.table(for: interpreter.version), "no layout table for \(interpreter.version)")
        let debug: ELFFile
        switch interpreter.debugFile() {
        case .success(let file): debug = file
        case .failure(let reason):
            print("SKIPPED \(interpreter.name): \(reason.text)")
            return
        }
        let clock = ContinuousClock()
        let start = clock.now
        let types = try DWARFTypes(elf: debug)
        var checked = 0
        var mismatches = 0
        // In declaration order, so failures read like the table.
        for field in LayoutField.allCases {
            guard let spec = table[field] else { continue }
            checked += 1
            do {
                let dwarfValue = try types.resolve(spec.dwarfPath)
                if dwarfValue != spec.value { mismatches += 1 }
                #expect(dwarfValue == spec.value, """
                    \(interpreter.name): \(field.rawValue) \(spec.dwarfPath): table \(spec.value), DWARF \(dwarfValue)
                    """)
            } catch {
                mismatches += 1
                Issue.record("\(interpreter.name): \(field.rawValue) \(spec.dwarfPath): table \(spec.value), DWARF error: \(error)")
            }
        }
        let elapsed = clock.now - start
        print("CHECKED \(interpreter.name): \(checked) entries of the \(interpreter.version) table, \(mismatches) mismatches, in \(elapsed) (\(debug.path))")
    }

    @Test("The _Py_DebugOffsets member order (3.13+) matches the interpreter's DWARF", arguments: interpreters)
    func debugOffsetsOrderMatchesDWARF(_ interpreter: Interpreter) throws {
        guard let order = DebugOffsets.memberOrder(for: interpreter.version),
              let types = try Self.dwarfTypes(of: interpreter) else { return }
        for (index, member) in order.enumerated() {
            // Members follow the 8-byte cookie, 8 bytes each.
            let dwarfOffset = try types.resolve("struct _Py_DebugOffsets.\(member)")
            #expect(dwarfOffset == 8 + 8 * index, "\(interpreter.name): \(member) at \(dwarfOffset), table says \(8 + 8 * index)")
        }
        #expect(try types.resolve("sizeof(struct _Py_DebugOffsets)") == 8 + 8 * order.count)
        print("CHECKED \(interpreter.name): \(order.count) _Py_DebugOffsets members")
    }

    @Test("The str state bits of VersionTraits (a bitfield) match the interpreter's DWARF", arguments: interpreters)
    func unicodeStateBitsMatchDWARF(_ interpreter: Interpreter) throws {
        let traits = try #require(VersionTraits.traits(for: interpreter.version))
        guard traits.strings == .pep393 else { return }
        guard let types = try Self.dwarfTypes(of: interpreter) else { return }
        let state = try types.resolve("PyASCIIObject.state") * 8
        let bits = traits.unicodeState
        #expect(try types.bitOffset("PyASCIIObject.state.kind") - state == Int(bits.kindShift), "\(interpreter.name)")
        #expect(try types.bitOffset("PyASCIIObject.state.compact") - state == Int(bits.compactBit), "\(interpreter.name)")
        #expect(try types.bitOffset("PyASCIIObject.state.ascii") - state == Int(bits.asciiBit), "\(interpreter.name)")
    }

    /// The interpreter's DWARF types, or nil (after saying so) when it is not installed.
    static func dwarfTypes(of interpreter: Interpreter) throws -> DWARFTypes? {
        switch interpreter.debugFile() {
        case .success(let file): return try DWARFTypes(elf: file)
        case .failure(let reason):
            print("SKIPPED \(interpreter.name): \(reason.text)")
            return nil
        }
    }

    @Test("An absent interpreter is skipped with a reason, not checked")
    func absentInterpreterIsSkipped() {
        let missing = [
            Interpreter(name: "nowhere", version: .init(3, 12), debugInfo: .file("/nonexistent/libpython3.12.so.1.0")),
            Interpreter(name: "nowhere", version: .init(3, 13), debugInfo: .buildID(executable: "/usr/bin/python3.13", root: "/nonexistent")),
        ]
        for interpreter in missing {
            guard case .failure(let reason) = interpreter.debugFile() else {
                Issue.record("\(interpreter.name) should be absent")
                continue
            }
            #expect(reason.text.contains("/nonexistent"))
        }
    }

    @Test("Says how many of the interpreters are present")
    func interpretersPresent() {
        let present = Self.interpreters.filter { if case .success = $0.debugFile() { return true } else { return false } }
        if present.isEmpty {
            print("NOTE: none of the \(Self.interpreters.count) interpreters is present: no layout table was checked against DWARF")
        } else {
            print("NOTE: \(present.count) of \(Self.interpreters.count) interpreters present: \(present.map(\.name).joined(separator: ", "))")
        }
    }
}
