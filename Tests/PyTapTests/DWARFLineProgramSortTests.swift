@testable import PyTap
import XCTest

/// The line table's rows put in address order sequence by sequence answer every lookup as
/// sorting every row does.
final class DWARFLineProgramSortTests: XCTestCase {
    private typealias Row = DWARFLineProgram.Row

    private func sequence(from start: UInt64, rows: Int, line: Int, terminated: Bool = true) -> [Row] {
        (0..<rows).map { Row(address: start + UInt64($0) * 4, file: 1, line: line + $0, endSequence: false) }
            + (terminated ? [Row(address: start + UInt64(rows) * 4, file: 1, line: line + rows, endSequence: true)] : [])
    }

    private func program(_ rows: [Row]) -> DWARFLineProgram {
        DWARFLineProgram(sortedRows: rows)
    }

    private func assertSameLookups(_ rows: [Row], file: StaticString = #filePath, line: UInt = #line) {
        let fast = program(DWARFLineProgram.sortedBySequence(rows)), full = program(DWARFLineProgram.sortedByRow(rows))
        XCTAssertEqual(fast.rows.count, rows.count, file: file, line: line)
        let highest = rows.map(\.address).max() ?? 0
        for address in 0...(highest + 4) {
            let got = fast.location(at: address), want = full.location(at: address)
            XCTAssertEqual(got?.line, want?.line, "0x\(String(address, radix: 16)) in \(rows)", file: file, line: line)
            if got?.line != want?.line { return }
        }
    }

    func testSequencesOutOfOrderAreSortedAsEveryRowWouldBe() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            // Sequences laid end to end (one's end at the next one's start) or apart, then
            // shuffled; some at address 0 (a linker's discarded functions), some overlapping.
            var sequences = [[Row]]()
            var start: UInt64 = 0x100
            for number in 0..<Int.random(in: 1...10, using: &generator) {
                let count = Int.random(in: 0...12, using: &generator)
                switch Int.random(in: 0..<10, using: &generator) {
                case 0: sequences.append(sequence(from: 0, rows: count, line: number * 100))
                case 1: sequences.append(sequence(from: start - UInt64.random(in: 0...8, using: &generator) * 4, rows: count, line: number * 100))
                default:
                    sequences.append(sequence(from: start, rows: count, line: number * 100))
                    start += UInt64(count) * 4 + (Bool.random(using: &generator) ? 0 : 64)
                }
            }
            var rows = Array(sequences.shuffled(using: &generator).joined())
            if Bool.random(using: &generator) {
                rows += sequence(from: UInt64.random(in: 0...start / 4, using: &generator) * 4, rows: 3, line: 9000, terminated: false)
            }
            assertSameLookups(rows)
        }
    }

    func testTiesAndDisorderInsideASequence() {
        // An end at the address of the row before it.
        assertSameLookups([Row(address: 0x10, file: 1, line: 1, endSequence: false), Row(address: 0x10, file: 1, line: 2, endSequence: true)]
                          + sequence(from: 0x10, rows: 2, line: 5))
        // Rows going backwards inside one sequence.
        assertSameLookups([Row(address: 0x20, file: 1, line: 1, endSequence: false), Row(address: 0x10, file: 1, line: 2, endSequence: false),
                           Row(address: 0x30, file: 1, line: 3, endSequence: true)] + sequence(from: 0x30, rows: 2, line: 7))
        // Two sequences with one start.
        assertSameLookups(sequence(from: 0x40, rows: 2, line: 1) + sequence(from: 0x40, rows: 4, line: 20))
    }
}
