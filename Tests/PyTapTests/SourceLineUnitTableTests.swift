import Foundation
@testable import PyTap
import XCTest

/// Units read whole into `SourceLineUnitTable`s (kept on disk by `SourceLineUnitTableFile`)
/// answer as the DWARF does; stored tables are untrusted input.
final class SourceLineUnitTableTests: XCTestCase {
    private func temporaryDirectory() throws -> CacheDirectory {
        let path = NSTemporaryDirectory() + "pytap-line-units-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return CacheDirectory(path: path)
    }

    func testTablesAnswerAsDirectedLookupsFreshAndFromDisk() throws {
        let path = "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) is not installed") }
        let elf = try ELFFile(path: path)
        let directory = try temporaryDirectory()
        let directed = try XCTUnwrap(SourceLineIndex(elf: elf))
        directed.directedLookups = .max
        // ceval.c's big function (many inlined calls) and every 200th function elsewhere.
        let functions = SymbolIndex(elf: elf).functions.filter { $0.size > 16 }
        let eval = try XCTUnwrap(functions.first { $0.name == "_PyEval_EvalFrameDefault" })
        var addresses = stride(from: eval.address, to: eval.address + eval.size, by: 97).map { $0 }
        addresses += stride(from: 0, to: functions.count, by: 200).map { functions[$0].address + functions[$0].size / 2 }
        let expected = addresses.map { directed.functions(at: $0) }
        XCTAssertGreaterThan(expected.filter { $0.count > 1 }.count, 100, "addresses inside inlined calls are compared")
        // Built from the DWARF (and stored), then mapped from the directory by a new index.
        for round in ["built", "stored"] {
            let index = try XCTUnwrap(SourceLineIndex(elf: elf, directory: directory))
            for (address, want) in zip(addresses, expected) {
                XCTAssertEqual(index.functions(at: address), want, "\(round) 0x\(String(address, radix: 16))")
            }
        }
        let stored = try FileManager.default.contentsOfDirectory(atPath: try XCTUnwrap(directory.path))
        XCTAssertTrue(stored.contains { $0.contains("-line-unit-") }, "\(stored)")
    }

    private let sample = SourceLineUnitTable(
        rows: [.init(address: 0x10, file: 1, line: 5, endSequence: false), .init(address: 0x18, file: 2, line: -3, endSequence: false),
               .init(address: 0x20, file: 1, line: 7, endSequence: true)],
        files: [1: "/src/a.c", 2: "/src/ünïcode.h"],
        scopes: [.init(ranges: [.init(low: 0x10, high: 0x20)], depth: 0, name: "outer", callFile: nil, callLine: nil, isInlined: false),
                 .init(ranges: [.init(low: 0x14, high: 0x1c), .init(low: 0x30, high: 0x31)], depth: 1, name: "inner",
                       callFile: 2, callLine: 40, isInlined: true)])

    func testLookupGivesInlinedCallsInnermostFirst() {
        XCTAssertEqual(sample.functions(at: 0x19), [SourceFunction(name: "inner", file: "/src/ünïcode.h", line: -3),
                                                    SourceFunction(name: "outer", file: "/src/ünïcode.h", line: 40)])
        XCTAssertEqual(sample.functions(at: 0x10), [SourceFunction(name: "outer", file: "/src/a.c", line: 5)])
        XCTAssertEqual(sample.functions(at: 0x20), [])
        XCTAssertEqual(sample.functions(at: 0x8), [])
    }

    /// Words that are not a table `encoded()` gives are refused: truncated, with words left
    /// over, a count past the end, rows out of order, a depth no walk gives.
    private func assertMalformedRefused(_ accepts: ([UInt64]) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        let words = sample.encoded()
        for length in 0..<words.count {
            XCTAssertFalse(accepts(Array(words.prefix(length))), "truncated to \(length)", file: file, line: line)
        }
        XCTAssertFalse(accepts(words + [0]), "trailing words", file: file, line: line)
        var huge = words
        huge[0] = .max
        XCTAssertFalse(accepts(huge), "a count past the end", file: file, line: line)
        var unordered = sample
        unordered.rows.swapAt(1, 2)
        XCTAssertFalse(accepts(unordered.encoded()), "rows out of address order", file: file, line: line)
        var deep = sample
        deep.scopes[1].depth = 64
        XCTAssertFalse(accepts(deep.encoded()), "a depth no walk gives", file: file, line: line)
    }

    func testStoredFileIsTakenOnlyUnchanged() throws {
        let path = "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) is not installed") }
        let directory = try temporaryDirectory()
        let key = SourceLineUnitTableFile.Key(elf: try ELFFile(path: path), supplementary: nil, unit: 3, unitOffset: 0x40)
        SourceLineUnitTableFile.store(sample, in: directory, key)
        let loaded = try XCTUnwrap(SourceLineUnitTableFile.load(from: directory, key))
        assertSameAnswers(loaded, sample)
        var other = key
        other.unitOffset = 0x41
        XCTAssertNil(SourceLineUnitTableFile.load(from: directory, other), "another unit's header")
        let file = try XCTUnwrap(directory.entry(try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: directory.path!).first)))
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: file))
        bytes[bytes.count - 20] ^= 1
        try bytes.write(to: URL(fileURLWithPath: file))
        XCTAssertNil(SourceLineUnitTableFile.load(from: directory, key), "a checksum that does not match")
        try bytes.prefix(bytes.count - 8).write(to: URL(fileURLWithPath: file))
        XCTAssertNil(SourceLineUnitTableFile.load(from: directory, key), "a truncated file")
    }

    func testTheChecksumSeesEveryWordItsPlaceAndTheCount() {
        let words: [UInt64] = (0..<11).map { 0x9e37_79b9_7f4a_7c15 &* ($0 + 1) }
        func sum(_ words: [UInt64]) -> UInt64 { words.withUnsafeBytes { ChecksummedWords.checksum($0) } }
        let original = sum(words)
        var seen: Set<UInt64> = [original]
        for index in words.indices {
            var flipped = words
            flipped[index] ^= 1 << UInt64(index * 5 % 64)
            XCTAssertTrue(seen.insert(sum(flipped)).inserted, "one bit of word \(index)")
        }
        for (first, second) in [(0, 1), (0, 4), (3, 7), (8, 10)] {
            var swapped = words
            swapped.swapAt(first, second)
            XCTAssertTrue(seen.insert(sum(swapped)).inserted, "words \(first) and \(second) swapped")
        }
        XCTAssertTrue(seen.insert(sum(words + [0])).inserted, "a zero word more")
        XCTAssertTrue(seen.insert(sum(Array(words.dropLast()))).inserted, "a word fewer")
        XCTAssertEqual(sum(words), original, "the same words, the same sum")
    }

    /// Words copied to memory a stored table can point into (as a mapping would keep them).
    private final class OwnedWords {
        let bytes: UnsafeMutableRawBufferPointer
        init(_ words: [UInt64]) {
            bytes = .allocate(byteCount: 8 * words.count, alignment: 8)
            words.map(\.littleEndian).withUnsafeBytes { bytes.copyMemory(from: $0) }
        }
        deinit { bytes.deallocate() }
    }

    private func stored(_ words: [UInt64]) -> StoredSourceLineUnitTable? {
        let owned = OwnedWords(words)
        return StoredSourceLineUnitTable(words: UnsafeRawBufferPointer(owned.bytes), owner: owned)
    }

    /// The stored table answers as the decoded one at every row address, next to it, and at
    /// both ends of every scope range.
    private func assertSameAnswers(_ stored: StoredSourceLineUnitTable, _ table: SourceLineUnitTable,
                                   file: StaticString = #filePath, line: UInt = #line) {
        var addresses = Set<UInt64>()
        for row in table.rows { addresses.formUnion([row.address &- 1, row.address, row.address &+ 1]) }
        for scope in table.scopes {
            for range in scope.ranges { addresses.formUnion([range.low &- 1, range.low, range.high &- 1, range.high]) }
        }
        XCTAssertEqual(stored.rows.count, table.rows.count, file: file, line: line)
        for number in Set(table.files.keys).union(table.rows.map(\.file)) {
            XCTAssertEqual(stored.fileName(number), table.files[number], "file \(number)", file: file, line: line)
        }
        // Every location; the functions (a scan of every scope) at up to ~3000 of the addresses.
        let sorted = addresses.sorted()
        for (position, address) in sorted.enumerated() {
            if position % max(1, sorted.count / 3000) == 0 {
                XCTAssertEqual(stored.functions(at: address), table.functions(at: address), "0x\(String(address, radix: 16))",
                               file: file, line: line)
            }
            let (want, got) = (table.location(at: address), stored.location(at: address))
            XCTAssertTrue(want?.file == got?.file && want?.line == got?.line, "location at 0x\(String(address, radix: 16))",
                          file: file, line: line)
        }
    }

    func testStoredTableAnswersInPlaceAsTheDecodedTable() throws {
        assertSameAnswers(try XCTUnwrap(stored(sample.encoded())), sample)
        XCTAssertEqual(sample.functions(at: 0x19).count, 2, "the sample has an inlined call to compare")
        let path = "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) is not installed") }
        let elf = try ELFFile(path: path)
        let index = try XCTUnwrap(SourceLineIndex(elf: elf))
        // ceval.c's unit (many rows and inlined calls) and one small unit.
        let eval = try XCTUnwrap(SymbolIndex(elf: elf).functions.first { $0.name == "_PyEval_EvalFrameDefault" })
        let evalUnit = try XCTUnwrap(index.unit(containing: eval.address))
        for unit in [evalUnit, 1] {
            let table = try XCTUnwrap(index.wholeUnitTable(unit))
            XCTAssertFalse(table.rows.isEmpty)
            assertSameAnswers(try XCTUnwrap(stored(table.encoded()), "unit \(unit)"), table)
        }
    }

    func testStoredTableRefusesWhatDecodingRefuses() {
        assertMalformedRefused { stored($0) != nil }
        var words = sample.encoded()
        words[words.count - 1] = 0
        XCTAssertNotNil(stored(words), "a range's bound is only data")
    }
}
