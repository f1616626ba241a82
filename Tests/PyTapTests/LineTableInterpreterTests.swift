import Foundation
import Testing
import PyTap

/// Cross-checks `LineTable` against real interpreters: each compiles a module with far-apart
/// lines, backward jumps and long single-line expressions, and reports for every code
/// object its raw table and the line CPython itself gives for each bytecode offset.
@Suite struct LineTableInterpreterTests {
    static let interpreters = [
        "/root/.pyenv/versions/2.7.18/bin/python2.7",
        "/root/.pyenv/versions/3.6.15/bin/python3.6",
        "/root/.pyenv/versions/3.9.18/bin/python3.9",
        "/root/.pyenv/versions/3.10.13/bin/python3.10",
        "/root/.pyenv/versions/3.11.7/bin/python3.11",
        "/root/.pyenv/versions/3.12.1/bin/python3.12",
        "/root/.pyenv/versions/3.13.0/bin/python3.13",
    ]

    /// What the script prints per code object. Lines are null where CPython has none.
    struct CodeLines: Decodable {
        var name: String
        var first: Int
        var size: Int
        var table: [UInt8]
        /// PyCode_Addr2Line through ctypes: [offset, line].
        var addr2line: [[Int?]]?
        /// ≤3.9: the algorithm of Objects/lnotab_notes.txt, in Python: [offset, line].
        var documented: [[Int?]]?
        /// 3.10+: co_lines(): [start, end, line].
        var lines: [[Int?]]?
        /// 3.11+: co_positions() line per code unit.
        var positions: [Int?]?
        /// dis.findlinestarts: [offset, line].
        var linestarts: [[Int?]]
    }

    static let script = #"""
    import sys, json, dis, types
    try:
        import ctypes
        addr2line = ctypes.pythonapi.PyCode_Addr2Line
        addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
        addr2line.restype = ctypes.c_int
    except Exception:
        addr2line = None

    def source():
        lines = []
        add = lines.append
        add("def outer(n, a, b):")
        add("    total = 0")
        add("    while n > 0:")
        add("        n -= 1")
        add("        total += helper(")
        add("            a,")
        add("            b,")
        add("        )")
        lines.extend(["    # gap"] * 350)
        add("    for i in range(n):")
        add("        if i % 2:")
        add("            continue")
        add("        total += i")
        add("    else:")
        add("        total -= 1")
        add("    t = (" + ", ".join(["a"] * 300) + ")")
        add("    try:")
        add("        total += 1")
        add("    finally:")
        add("        total -= 1")
        add("    x = helper(a,")
        lines.extend([""] * 320)
        add("        b)")
        add("    sq = [v * v for v in range(n) if v]")
        add("    f = lambda q: q + 1")
        add("    def inner(z):")
        add("        return z * 2")
        add("    return total + x")
        add("")
        add("class K(object):")
        add("    def m(self):")
        lines.extend([""] * 260)
        add("        return 1")
        return "\n".join(lines) + "\n"

    def all_codes(code):
        yield code
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                for inner in all_codes(const):
                    yield inner

    def documented(code, offset, signed):
        # Objects/lnotab_notes.txt: add increments until the address passes the offset.
        table = bytearray(code.co_lnotab)
        line = code.co_firstlineno
        addr = 0
        for i in range(0, len(table) - 1, 2):
            addr += table[i]
            if addr > offset:
                break
            increment = table[i + 1]
            if signed and increment >= 0x80:
                increment -= 0x100
            line += increment
        return line

    version = sys.version_info[:2]
    debug_build = hasattr(sys, "gettotalrefcount")
    result = []
    for code in all_codes(compile(source(), "<pytap line table check>", "exec")):
        size = len(code.co_code)
        entry = {"name": code.co_name, "first": code.co_firstlineno, "size": size}
        if version >= (3, 10):
            entry["table"] = list(bytearray(code.co_linetable))
            entry["lines"] = [[s, e, l] for (s, e, l) in code.co_lines()]
        else:
            entry["table"] = list(bytearray(code.co_lnotab))
            entry["documented"] = [[o, documented(code, o, version >= (3, 6))] for o in range(size + 4)]
        if version >= (3, 11):
            entry["positions"] = [p[0] for p in code.co_positions()]
        entry["linestarts"] = [[o, l] for (o, l) in dis.findlinestarts(code)]
        if addr2line is not None:
            # Past the end only where CPython does not assert against it.
            last = size + (0 if debug_build or version >= (3, 11) else 4)
            pairs = []
            for o in range(-2, last):
                line = addr2line(code, o)
                pairs.append([o, None if line < 0 else line])
            entry["addr2line"] = pairs
        result.append(entry)
    sys.stdout.write(json.dumps(result))
    """#

    /// Runs `python -E -S script` and returns its standard output.
    static func run(_ python: String, script: String) throws -> Data {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pytap-linetable-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let scriptURL = directory.appendingPathComponent("lines.py")
        let errorURL = directory.appendingPathComponent("stderr")
        try script.write(to: scriptURL, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-E", "-S", scriptURL.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: errorURL)
        try process.run()
        // Read before waiting: the JSON is larger than a pipe's buffer.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errors = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(python) failed: \(errors)"])
        }
        return data
    }

    /// "…/python3.10" → 3.10.
    static func minorVersion(ofInterpreter path: String) -> PythonMinorVersion? {
        let name = (path as NSString).lastPathComponent
        guard name.hasPrefix("python") else { return nil }
        let parts = name.dropFirst("python".count).split(separator: ".").compactMap { Int($0) }
        return parts.count == 2 ? PythonMinorVersion(parts[0], parts[1]) : nil
    }

    @Test(arguments: interpreters)
    func lineTableAgreesWithTheInterpreterAtEveryOffset(python: String) throws {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            print("SKIPPED \(python): not present")
            return
        }
        let minor = try #require(LineTableInterpreterTests.minorVersion(ofInterpreter: python))
        let format = try #require(VersionTraits.traits(for: minor)).lineTable
        let data = try LineTableInterpreterTests.run(python, script: LineTableInterpreterTests.script)
        let codes = try JSONDecoder().decode([CodeLines].self, from: data)
        // <module>, outer, inner, <lambda>, K, m (and the comprehension before 3.12).
        #expect(codes.count >= 6)

        var checked = 0
        var sawAddr2Line = false
        for code in codes {
            let table = LineTable(format: format, bytes: code.table, firstLine: code.first)
            var mismatches = [String]()
            func check(_ offset: Int, _ line: Int?, _ source: String) {
                checked += 1
                let found = table.line(atByteOffset: offset)
                if found != line { mismatches.append("\(source) offset \(offset): CPython \(line.map(String.init) ?? "none"), pytap \(found.map(String.init) ?? "none")") }
            }
            for pair in code.addr2line ?? [] {
                sawAddr2Line = true
                check(pair[0]!, pair[1], "PyCode_Addr2Line")
            }
            for pair in code.documented ?? [] { check(pair[0]!, pair[1], "lnotab_notes") }
            for range in code.lines ?? [] {
                for offset in stride(from: range[0]!, to: range[1]!, by: 1) { check(offset, range[2], "co_lines") }
            }
            for (unit, line) in (code.positions ?? []).enumerated() {
                check(2 * unit, line, "co_positions")
                check(2 * unit + 1, line, "co_positions")
            }
            for pair in code.linestarts { check(pair[0]!, pair[1], "findlinestarts") }
            #expect(mismatches.isEmpty, "\(python) \(code.name) (first line \(code.first), table \(code.table)): \(mismatches.prefix(8))")
        }

        // The module did exercise what it is for: jumps over 300 lines, and (3.8+, where
        // a multi-line call is attributed back to its first line) backward steps.
        let outer = try #require(codes.first { $0.name == "outer" })
        let outerTable = LineTable(format: format, bytes: outer.table, firstLine: outer.first)
        let outerLines = (0..<outer.size).compactMap { outerTable.line(atByteOffset: $0) }
        let steps = zip(outerLines, outerLines.dropFirst()).map { $1 - $0 }
        #expect(steps.contains { $0 > 300 }, "no forward jump over 300 lines")
        if minor >= PythonMinorVersion(3, 8) {
            #expect(steps.contains { $0 < -300 }, "no backward jump over 300 lines")
        }
        #expect(outer.size > 512, "outer's bytecode should be long enough to need split entries")
        print("\(python): \(codes.count) code objects, \(checked) offsets checked\(sawAddr2Line ? " (PyCode_Addr2Line via ctypes)" : "")")
    }
}
