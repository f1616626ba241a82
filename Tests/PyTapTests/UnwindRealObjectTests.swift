import Foundation
import PyTap
import XCTest

/// The CFI parser and interpreter over the whole `.eh_frame` of real objects on this machine.
final class UnwindRealObjectTests: XCTestCase {
    static let objects = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/bin/python3.11",
        "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0",
    ]
    /// A function each object defines, whose first instruction must have the entry rule.
    static let knownFunction = [
        "/lib/x86_64-linux-gnu/libc.so.6": "malloc",
        "/usr/bin/python3.11": "Py_BytesMain",
        "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0": "_PyEval_EvalFrameDefault",
    ]

    func testEveryFDEOfRealObjectsParsesAndRuns() throws {
        var checked = 0
        for path in Self.objects {
            guard FileManager.default.fileExists(atPath: path) else {
                reportMissing("\(path): not on this machine")
                continue
            }
            let elf = try ELFFile(path: path)
            let table = try UnwindTable(elf: elf)
            let ehFrame = try XCTUnwrap(table.ehFrame, path)
            let entries = try XCTUnwrap(table.header?.table, "\(path): .eh_frame_hdr table")
            XCTAssertGreaterThan(entries.count, 500, path)
            let program = CFIProgram(section: ehFrame, architecture: .x86_64)
            let debugFile = DebugFileLocator(roots: [""]).debugFile(for: elf, targetPath: path)
            let symbols = SymbolIndex(elf: elf, debugFile: debugFile)
            var entryRule = 0, signalFrames = 0, rows = 0, atFunctions = 0
            var notEntryRule = [String]()
            for (location, fdeAddress) in entries {
                let fde = try ehFrame.frameDescriptionEntry(at: Int(fdeAddress - ehFrame.address))
                XCTAssertEqual(fde.initialLocation, location, "\(path): table and FDE agree")
                let all = try program.rows(for: fde)
                rows += all.count
                let first = try XCTUnwrap(all.first)
                let isEntryRule = first.cfa == .registerOffset(register: 7, offset: 8) && first.rule(16) == .offset(-8)
                if isEntryRule { entryRule += 1 }
                // An FDE that starts a function (not a `.cold` part split off one) starts with the entry rule.
                if let match = symbols.lookup(location), match.offset == 0, !match.name.contains(".cold") {
                    atFunctions += 1
                    if !isEntryRule && !fde.cie.isSignalFrame && first.rule(16) != .undefined { notEntryRule.append(match.name) }
                }
                if fde.cie.isSignalFrame {
                    signalFrames += 1
                    // glibc starts the FDE one byte early (a nop), so pc − 1 of the interrupted frame finds it.
                    XCTAssertEqual(table.code(at: fde.initialLocation + 1, count: 9), UnwindArchitecture.x86_64.signalTrampoline?.code,
                                   "\(path): the signal FDE covers __restore_rt")
                }
                // The table's own lookup finds this FDE for its first and last byte.
                XCTAssertEqual(try table.frameDescriptionEntry(for: location)?.fde.offset, fde.offset)
                if fde.addressRange > 0 {
                    XCTAssertEqual(try table.frameDescriptionEntry(for: location + fde.addressRange - 1)?.fde.offset, fde.offset)
                }
            }
            // Functions begin at rsp + 8 with the return address at CFA − 8. Other FDEs: `.cold`
            // parts, PLT sections, the signal trampoline, the outermost frames (RA undefined).
            XCTAssertGreaterThan(atFunctions, entries.count / 3, path)
            XCTAssertEqual(notEntryRule, [], path)
            if path.hasSuffix("libc.so.6") { XCTAssertEqual(signalFrames, 1, "libc's __restore_rt") }
            let symbol = try XCTUnwrap(elf.symbol(named: Self.knownFunction[path]!), path)
            let row = try XCTUnwrap(try table.row(for: symbol.value), "\(path): \(symbol.name)")
            XCTAssertEqual(row.row.cfa, .registerOffset(register: 7, offset: 8), "\(path): \(symbol.name)")
            XCTAssertEqual(row.row.rule(16), .offset(-8), "\(path): \(symbol.name)")
            print("\(path): \(entries.count) FDEs (\(atFunctions) at a function symbol), \(rows) rows, \(entryRule) with the entry rule, \(signalFrames) signal frames")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0, "no object to check")
    }

    func testCacheSharesTablesByBuildID() throws {
        let path = "/lib/x86_64-linux-gnu/libc.so.6"
        guard FileManager.default.fileExists(atPath: path) else { try skipUnlessCI("no \(path)") }
        let cache = UnwindTableCache()
        let first = try cache.table(for: try ELFFile(path: path))
        let second = try cache.table(for: try ELFFile(path: "/usr/lib/x86_64-linux-gnu/libc.so.6"))
        XCTAssertTrue(first === second)
        XCTAssertEqual(cache.count, 1)
    }
}
