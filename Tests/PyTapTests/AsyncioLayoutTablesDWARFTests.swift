import Foundation
import Testing
@testable import PyTap

/// Checks the asyncio layout tables against the DWARF of real interpreters with pytap's
/// own DWARF reader: `TaskObj`/`FutureObj` from the `_asyncio` module's DWARF, the rest
/// from the interpreter's. On 3.14+ the module's own `.AsyncioDebug` section must agree too.
struct AsyncioLayoutTablesDWARFTests {
    typealias Interpreter = LayoutTablesDWARFTests.Interpreter

    struct Build: Sendable, CustomTestStringConvertible {
        var runtime: Interpreter
        /// Where `_asyncio` is: its own file, or the runtime's when built in.
        var module: Interpreter
        /// The object holding `.AsyncioDebug` (3.14+), as a host path.
        var debugSection: String?
        var testDescription: String { runtime.testDescription }
    }

    static let pyenv = LayoutTablesDWARFTests.pyenv
    static let sid = LayoutTablesDWARFTests.sid

    static func pyenvBuild(_ version: String, _ minor: Int) -> Build {
        let runtime = LayoutTablesDWARFTests.interpreters.first { $0.name == "pyenv \(version)" }!
        let module = "\(pyenv)/\(version)/lib/python3.\(minor)/lib-dynload/_asyncio.cpython-3\(minor)-x86_64-linux-gnu.so"
        return Build(runtime: runtime, module: Interpreter(name: module, version: runtime.version, debugInfo: .file(module)))
    }

    static let builds: [Build] = [
        pyenvBuild("3.8.18", 8), pyenvBuild("3.9.18", 9), pyenvBuild("3.10.13", 10), pyenvBuild("3.11.7", 11),
        pyenvBuild("3.12.1", 12), pyenvBuild("3.13.0", 13),
        Build(runtime: LayoutTablesDWARFTests.interpreters.first { $0.name == "sid /usr/bin/python3.14" }!,
              module: Interpreter(name: "sid _asyncio 3.14", version: .init(3, 14),
                                  debugInfo: .buildID(executable: "/usr/lib/python3.14/lib-dynload/_asyncio.cpython-314-x86_64-linux-gnu.so", root: sid)),
              debugSection: sid + "/usr/lib/python3.14/lib-dynload/_asyncio.cpython-314-x86_64-linux-gnu.so"),
        Build(runtime: LayoutTablesDWARFTests.interpreters.first { $0.name == "sid /usr/bin/python3.15" }!,
              module: LayoutTablesDWARFTests.interpreters.first { $0.name == "sid /usr/bin/python3.15" }!,
              debugSection: sid + "/usr/bin/python3.15"),
    ]

    @Test("Every asyncio layout table entry matches the DWARF of the interpreter and its _asyncio", arguments: builds)
    func tableMatchesDWARF(_ build: Build) throws {
        let table = try #require(AsyncioLayoutTables.table(for: build.runtime.version))
        guard let runtime = try LayoutTablesDWARFTests.dwarfTypes(of: build.runtime),
              let module = try LayoutTablesDWARFTests.dwarfTypes(of: build.module) else { return }
        var checked = 0
        for field in AsyncioField.allCases {
            guard let spec = table[field] else { continue }
            // TaskObj, FutureObj and fut_state's enumerators live in the module's DWARF only.
            let inModule = spec.dwarfPath.hasPrefix("TaskObj.") || spec.dwarfPath.hasPrefix("FutureObj.")
                || spec.dwarfPath.hasPrefix("enum(STATE_")
            let value = try (inModule ? module : runtime).resolve(spec.dwarfPath)
            #expect(value == spec.value, "\(build.runtime.name): \(field.rawValue) \(spec.dwarfPath): table \(spec.value), DWARF \(value)")
            checked += 1
        }
        #expect(throws: Never.self) { try AsyncioLayout(version: PythonVersion(major: build.runtime.version.major, minor: build.runtime.version.minor, micro: 0), table: table) }
        print("CHECKED \(build.runtime.name): \(checked) asyncio entries")
    }

    @Test("3.14+: the _asyncio module's own _Py_AsyncioModuleDebugOffsets agrees with the table", arguments: builds)
    func debugSectionAgrees(_ build: Build) throws {
        guard let path = build.debugSection else { return }
        guard let elf = try? ELFFile(path: path) else {
            print("SKIPPED \(path): not present")
            return
        }
        let bytes = try #require(try elf.contents(ofSectionNamed: AsyncioDebugOffsets.sectionName), "\(path) has no .AsyncioDebug")
        let values = try AsyncioDebugOffsets.parse(bytes)
        let table = try #require(AsyncioLayoutTables.table(for: build.runtime.version))
        #expect(values.count == 6)
        for (field, value) in values {
            #expect(table[field]?.value == value, "\(path): \(field.rawValue) section \(value), table \(table[field]?.value ?? -1)")
        }
    }
}
