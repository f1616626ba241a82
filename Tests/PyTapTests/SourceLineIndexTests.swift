import Foundation
import PyTap
import XCTest

/// Source lines and inlined calls against binutils' `addr2line -a -i -f` on real files: pyenv's
/// shared libpython3.11 (DWARF in the file) and the debug file of Debian's static
/// python3.11 (python3.11-dbg). Addresses are spread over the functions of the file.
final class SourceLineIndexTests: XCTestCase {
    struct Entry: Equatable, CustomStringConvertible {
        var name: String
        var file: String
        var line: Int
        var description: String { "\(name) \(file):\(line)" }
    }

    func addr2line(_ path: String, _ addresses: [UInt64]) throws -> [UInt64: [Entry]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/addr2line")
        process.arguments = ["-a", "-i", "-f", "-e", path] + addresses.map { "0x" + String($0, radix: 16) }
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var result = [UInt64: [Entry]]()
        var current: UInt64 = 0
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)[...]
        while let first = lines.popFirst() {
            if first.hasPrefix("0x") {
                current = UInt64(first.dropFirst(2), radix: 16) ?? 0
                result[current] = []
                continue
            }
            guard let location = lines.popFirst() else { break }
            // "file:line" or "file:line (discriminator N)".
            let plain = location.split(separator: " ").first.map(String.init) ?? location
            guard let colon = plain.lastIndex(of: ":") else { continue }
            result[current, default: []].append(Entry(name: first, file: String(plain[..<colon]),
                                                      line: Int(plain[plain.index(after: colon)...]) ?? 0))
        }
        return result
    }

    func compare(file path: String, minimumAgreement: Double) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) is not installed") }
        let elf = try ELFFile(path: path)
        let index = try XCTUnwrap(SourceLineIndex(elf: elf), "no DWARF in \(path)")
        let symbols = SymbolIndex(elf: elf)
        let functions = symbols.functions.filter { $0.size > 16 }
        XCTAssertGreaterThan(functions.count, 1000)
        // Every 7th function: its start, its middle, and near its end.
        var addresses = [UInt64]()
        for function in stride(from: 0, to: functions.count, by: 7).map({ functions[$0] }) {
            addresses += [function.address, function.address + function.size / 2, function.address + function.size - 3]
        }
        var expected = [UInt64: [Entry]]()
        for chunk in stride(from: 0, to: addresses.count, by: 500) {
            expected.merge(try addr2line(path, Array(addresses[chunk..<min(chunk + 500, addresses.count)]))) { $1 }
        }
        var agree = 0, agreeWithFiles = 0, compared = 0
        var mismatches = [String]()
        for address in addresses {
            guard let want = expected[address], !want.isEmpty, want[0].line != 0 else { continue }
            compared += 1
            var got = index.functions(at: address).map { Entry(name: $0.name, file: $0.file ?? "??", line: $0.line ?? 0) }
            // As TargetModules does (and addr2line): a function DWARF does not name gets the symbol's name.
            if let last = got.indices.last, got[last].name == "??", let symbol = symbols.lookup(address)?.name {
                got[last].name = symbol
            }
            // addr2line names a GCC clone by its symbol (`f.constprop.0`) where it misses the
            // DWARF subprogram; pytap names it by its origin (`f`).
            func normal(_ entries: [Entry], withFiles: Bool) -> [Entry] {
                entries.map { Entry(name: SourceLineIndexTests.origin($0.name), file: withFiles ? $0.file : "", line: $0.line) }
            }
            if normal(got, withFiles: true) == normal(want, withFiles: true) { agreeWithFiles += 1 }
            if normal(got, withFiles: false) == normal(want, withFiles: false) {
                agree += 1
            } else if mismatches.count < 10 {
                mismatches.append("0x\(String(address, radix: 16)): pytap \(got) addr2line \(want)")
            }
        }
        XCTAssertGreaterThan(compared, 1000)
        let agreement = Double(agree) / Double(max(compared, 1))
        let fileAgreement = Double(agreeWithFiles) / Double(max(compared, 1))
        print("SourceLineIndex vs addr2line on \(path): functions and lines agree at \(agree) of \(compared) addresses, with files at \(agreeWithFiles)")
        XCTAssertGreaterThanOrEqual(agreement, minimumAgreement, mismatches.joined(separator: "\n"))
        // Files differ where addr2line names the LTO unit (`<artificial>`) or the compile
        // unit's file instead of the line table's (a header's inline function).
        XCTAssertGreaterThanOrEqual(fileAgreement, 0.95)
    }

    /// A function name without GCC's clone suffixes (`.constprop.0`, `.isra.0`, `.part.0`, `.lto_priv.0`, `.cold`).
    static func origin(_ name: String) -> String {
        name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? name
    }

    func testPyenvLibpythonMatchesAddr2line() throws {
        try compare(file: "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0", minimumAgreement: 0.99)
    }

    func testDebianPython311DebugFileMatchesAddr2line() throws {
        let python = try ELFFile(path: "/usr/bin/python3.11")
        let id = try XCTUnwrap(python.buildIDHex)
        try compare(file: "/usr/lib/debug/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug", minimumAgreement: 0.99)
    }
}
