import Foundation
@testable import PyTap
import XCTest

/// `SourceLineIndex` decodes only the compile units it is asked about (what keeps
/// `dump --native` fast on large DWARF), finding them through `.debug_aranges`.
final class SourceLineIndexLazinessTests: XCTestCase {
    func testOneLookupDecodesOnlyItsUnit() throws {
        let path = "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) is not installed") }
        let elf = try ELFFile(path: path)
        let index = try XCTUnwrap(SourceLineIndex(elf: elf))
        XCTAssertGreaterThan(index.context.units.count, 100)
        // Only units `.debug_aranges` does not list are read at the start (a few, not hundreds).
        let atStart = index.context.decodedAbbreviationTables
        XCTAssertLessThanOrEqual(atStart, 8)
        let symbol = try XCTUnwrap(SymbolIndex(elf: elf).functions.first { $0.name == "PyList_Append" })
        let functions = index.functions(at: symbol.address + 4)
        XCTAssertEqual(functions.last?.name, "PyList_Append")
        XCTAssertTrue(functions.last?.file?.hasSuffix("listobject.c") ?? false, "\(functions)")
        XCTAssertLessThanOrEqual(index.context.decodedAbbreviationTables, atStart + 2)
    }

    func testAddressRangeSetsWithPaddingAndTwoTuples() {
        func le(_ value: UInt64, _ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        // Header: length, version 2, unit offset 0x40, address size 8, segment size 0 (12 bytes),
        // padded to 16; then two tuples and the terminator.
        var set = le(2, 2) + le(0x40, 4) + [8, 0] + [UInt8](repeating: 0, count: 4)
        set += le(0x1000, 8) + le(0x20, 8) + le(0x2000, 8) + le(0x8, 8) + le(0, 8) + le(0, 8)
        let bytes = le(UInt64(set.count), 4) + set
        let ranges = DWARFAddressRangeTable.ranges(in: DWARFSectionData(kind: .aranges, copying: bytes + bytes))
        XCTAssertEqual(ranges.map(\.low), [0x1000, 0x2000, 0x1000, 0x2000])
        XCTAssertEqual(ranges.map(\.high), [0x1020, 0x2008, 0x1020, 0x2008])
        XCTAssertEqual(Set(ranges.map(\.unitOffset)), [0x40])
        // A truncated set ends the reading without a trap.
        XCTAssertEqual(DWARFAddressRangeTable.ranges(in: DWARFSectionData(kind: .aranges, copying: Array(bytes.prefix(30)))).count, 0)
    }
}

/// The first lookups in a unit search only the scopes on the way to their address; later
/// ones search the unit read whole. Both give the same answers.
final class SourceLineIndexDirectedLookupTests: XCTestCase {
    func testDirectedAndWholeUnitLookupsAgree() throws {
        let path = "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) is not installed") }
        let elf = try ELFFile(path: path)
        let directed = try XCTUnwrap(SourceLineIndex(elf: elf))
        directed.directedLookups = .max
        let whole = try XCTUnwrap(SourceLineIndex(elf: elf))
        whole.directedLookups = 0
        // ceval.c's big function (many inlined calls) and every 50th function elsewhere.
        let functions = SymbolIndex(elf: elf).functions.filter { $0.size > 16 }
        let eval = try XCTUnwrap(functions.first { $0.name == "_PyEval_EvalFrameDefault" })
        var addresses = stride(from: eval.address, to: eval.address + eval.size, by: 97).map { $0 }
        addresses += stride(from: 0, to: functions.count, by: 50).map { functions[$0].address + functions[$0].size / 2 }
        var inlined = 0
        for address in addresses {
            let got = directed.functions(at: address)
            XCTAssertEqual(got, whole.functions(at: address), "0x\(String(address, radix: 16))")
            if got.count > 1 { inlined += 1 }
        }
        XCTAssertGreaterThan(inlined, 100, "addresses inside inlined calls were compared")
    }
}
