import Testing
import PyTap

/// Hand-built line tables in each of CPython's formats (Objects/lnotab_notes.txt for
/// co_lnotab and the 3.10 co_linetable, Objects/locations.md for 3.11+).
@Suite struct LineTableTests {
    /// Checks `table` gives `expected[offset]` for each listed offset.
    private func expectLines(_ table: LineTable, _ expected: [Int: Int?],
                             sourceLocation: SourceLocation = #_sourceLocation) {
        for (offset, line) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(table.line(atByteOffset: offset) == line, "offset \(offset)", sourceLocation: sourceLocation)
        }
    }

    /// `lines` for every offset in `range`.
    private func all(_ range: Range<Int>, _ line: Int?) -> [Int: Int?] {
        Dictionary(uniqueKeysWithValues: range.map { ($0, line) })
    }

    // MARK: co_lnotab, 2.7 (unsigned increments)

    @Test func lnotabUnsignedAppliesEachLineIncrementAfterItsAddressRange() {
        // (0,+1): line 11 from the start; (6,+1): bytes 0–5 on 11; (3,+2): bytes 6–8 on 12.
        let table = LineTable(format: .lnotabUnsigned, bytes: [0, 1, 6, 1, 3, 2], firstLine: 10)
        expectLines(table, all(0..<6, 11).merging(all(6..<9, 12)) { $1 })
        // Past the last entry: the line reached after all increments.
        expectLines(table, [9: 14, 500: 14])
        #expect(table.firstLine == 10)
    }

    @Test func lnotabUnsignedLineJumpAbove255IsSplitAcrossEntries() {
        // compile.c emits (addr, 255), (0, rest) for a jump of 300 lines.
        let table = LineTable(format: .lnotabUnsigned, bytes: [3, 255, 0, 45, 4, 0], firstLine: 1)
        expectLines(table, all(0..<3, 1).merging(all(3..<7, 301)) { $1 })
        expectLines(table, [7: 301])
    }

    @Test func lnotabUnsignedAddressJumpAbove255IsSplitAcrossEntries() {
        // 300 bytes on one line: (255, 0), (45, +1).
        let table = LineTable(format: .lnotabUnsigned, bytes: [255, 0, 45, 1, 2, 0], firstLine: 20)
        expectLines(table, [0: 20, 254: 20, 255: 20, 299: 20, 300: 21, 301: 21, 302: 21])
    }

    @Test func lnotabUnsignedReads0xFFAsPlus255NotMinusOne() {
        let table = LineTable(format: .lnotabUnsigned, bytes: [2, 0xff, 2, 0], firstLine: 1)
        expectLines(table, [0: 1, 1: 1, 2: 256, 3: 256])
    }

    @Test(arguments: [VersionTraits.LineTableFormat.lnotabUnsigned, .lnotabSigned])
    func emptyLnotabPutsEverythingOnTheFirstLine(format: VersionTraits.LineTableFormat) {
        let table = LineTable(format: format, bytes: [], firstLine: 42)
        expectLines(table, [-5: 42, 0: 42, 1: 42, 10_000: 42])
        #expect(table.ranges.isEmpty)
    }

    @Test func lnotabIgnoresATrailingOddByte() {
        let table = LineTable(format: .lnotabSigned, bytes: [2, 1, 2], firstLine: 1)
        expectLines(table, [0: 1, 1: 1, 2: 2, 50: 2])
    }

    // MARK: co_lnotab, 3.6–3.9 (signed increments)

    @Test func lnotabSignedGoesBackwards() {
        // (2,+1) (2,+1) (4,-2) (2,+3): a loop jumping back to an earlier line.
        let table = LineTable(format: .lnotabSigned, bytes: [2, 1, 2, 1, 4, 0xfe, 2, 3], firstLine: 5)
        expectLines(table, [0: 5, 1: 5, 2: 6, 3: 6, 4: 7, 7: 7, 8: 5, 9: 5, 10: 8, 99: 8])
    }

    @Test func lnotabSignedLargeNegativeJumpIsSplitAcrossEntries() {
        // -200 lines: (4, -128), (0, -72).
        let table = LineTable(format: .lnotabSigned, bytes: [4, 0x80, 0, 0xb8, 6, 0], firstLine: 400)
        expectLines(table, all(0..<4, 400).merging(all(4..<10, 200)) { $1 })
        expectLines(table, [10: 200])
    }

    @Test func lnotabSignedReads0xFFAsMinusOne() {
        let table = LineTable(format: .lnotabSigned, bytes: [2, 0xff, 2, 0], firstLine: 10)
        expectLines(table, [0: 10, 2: 9, 3: 9])
    }

    @Test func negativeOffsetIsTheFirstLineInEveryFormat() {
        for format in [VersionTraits.LineTableFormat.lnotabUnsigned, .lnotabSigned, .lineTable310, .locationTable311] {
            let bytes = FakeLineTable.encode(format, firstLine: 7, lines: [9, 12])
            let table = LineTable(format: format, bytes: bytes, firstLine: 7)
            #expect(table.line(atByteOffset: -1) == 7, "\(format)")
            #expect(table.line(atByteOffset: Int.min) == 7, "\(format)")
            #expect(table.line(atByteOffset: 0) == 9, "\(format)")
            #expect(table.line(atByteOffset: 3) == 12, "\(format)")
        }
    }

    // MARK: 3.10 co_linetable

    @Test func lineTable310RangesWithNoLineAndZeroLengthJumps() {
        let bytes: [UInt8] = [
            6, 0,          // [0, 6)   line 10
            4, 1,          // [6, 10)  line 11
            2, 0x80,       // [10, 12) no line; the running line stays 11
            2, 2,          // [12, 14) line 13
            0, 127, 0, 127, // +254 lines, no bytes
            2, 46,         // [14, 16) line 313
            2, 0xfb,       // [16, 18) line 308
        ]
        let table = LineTable(format: .lineTable310, bytes: bytes, firstLine: 10)
        var expected = all(0..<6, 10)
        expected.merge(all(6..<10, 11)) { $1 }
        expected.merge(all(10..<12, nil)) { $1 }
        expected.merge(all(12..<14, 13)) { $1 }
        expected.merge(all(14..<16, 313)) { $1 }
        expected.merge(all(16..<18, 308)) { $1 }
        // Past the end there is no line (PyCode_Addr2Line gives -1).
        expected[18] = nil
        expected[1000] = nil
        expected[-2] = 10
        expectLines(table, expected)
        // Zero-length pairs leave no range behind.
        #expect(table.ranges.allSatisfy { $0.start < $0.end })
        #expect(table.ranges.count == 6)
    }

    @Test func lineTable310LongRunOfBytesIsSplitAcrossEntries() {
        // 260 bytes on one line: (254, +1), (6, 0).
        let table = LineTable(format: .lineTable310, bytes: [254, 1, 6, 0], firstLine: 1)
        expectLines(table, [0: 2, 253: 2, 254: 2, 259: 2, 260: nil])
    }

    // MARK: 3.11+ location table

    @Test func locationTableEveryEntryForm() {
        var bytes = [UInt8]()
        bytes += [0x80 | 13 << 3 | 0] + FakeLineTable.signedVarint(0)        // [0, 2)   no column, +0 → 100
        bytes += [0x80 | 5 << 3 | 2, 0x12]                                   // [2, 8)   short form 5 → 100
        bytes += [0x80 | 11 << 3 | 1, 4, 9]                                  // [8, 12)  one-line +1 → 101
        bytes += [0x80 | 12 << 3 | 0, 0, 3]                                  // [12, 14) one-line +2 → 103
        bytes += [0x80 | 15 << 3 | 1]                                        // [14, 18) none → no line
        bytes += [0x80 | 14 << 3 | 7] + FakeLineTable.signedVarint(350)      // [18, 34) long +350 → 453
            + FakeLineTable.varint(0) + FakeLineTable.varint(1) + FakeLineTable.varint(5)
        bytes += [0x80 | 14 << 3 | 0] + FakeLineTable.signedVarint(-400)     // [34, 36) long -400 → 53
            + FakeLineTable.varint(2) + FakeLineTable.varint(0) + FakeLineTable.varint(0)
        bytes += [0x80 | 13 << 3 | 0] + FakeLineTable.signedVarint(-3)       // [36, 38) no column -3 → 50
        bytes += [0x80 | 10 << 3 | 0, 2, 5]                                  // [38, 40) one-line +0 → 50
        bytes += [0x80 | 0 << 3 | 1, 0x7f]                                   // [40, 44) short form 0 → 50
        bytes += [0x80 | 9 << 3 | 0, 0x01]                                   // [44, 46) short form 9 → 50
        #expect(FakeLineTable.signedVarint(350) == [124, 10])
        #expect(FakeLineTable.signedVarint(-400) == [97, 12])

        let table = LineTable(format: .locationTable311, bytes: bytes, firstLine: 100)
        var expected = all(0..<8, 100)
        expected.merge(all(8..<12, 101)) { $1 }
        expected.merge(all(12..<14, 103)) { $1 }
        expected.merge(all(14..<18, nil)) { $1 }
        expected.merge(all(18..<34, 453)) { $1 }
        expected.merge(all(34..<36, 53)) { $1 }
        expected.merge(all(36..<46, 50)) { $1 }
        expected[46] = nil
        expected[10_000] = nil
        expectLines(table, expected)
        #expect(table.ranges.map(\.end) == [2, 8, 12, 14, 18, 34, 36, 38, 40, 44, 46])
    }

    @Test func locationTableNoLocationEntryDoesNotMoveTheRunningLine() {
        var bytes = [UInt8]()
        bytes += [0x80 | 13 << 3] + FakeLineTable.signedVarint(5)   // line 15
        bytes += [0x80 | 15 << 3]                                   // none
        bytes += [0x80 | 11 << 3, 0, 1]                             // +1 from 15, not from "none"
        let table = LineTable(format: .locationTable311, bytes: bytes, firstLine: 10)
        expectLines(table, [0: 15, 2: nil, 4: 16])
    }

    @Test func locationTableVarintAcrossManyChunks() {
        // A jump of a million lines (2 000 000 once signed) needs four 6-bit chunks.
        let jump = FakeLineTable.signedVarint(1_000_000)
        #expect(jump.count == 4)
        let table = LineTable(format: .locationTable311, bytes: [0x80 | 13 << 3] + jump + [0x80 | 13 << 3]
                              + FakeLineTable.signedVarint(-999_999), firstLine: 1)
        #expect(table.line(atByteOffset: 0) == 1_000_001)
        #expect(table.line(atByteOffset: 2) == 2)
    }

    @Test func locationTableSkipsStrayBytesAndToleratesATruncatedEntry() {
        // Bytes without the high bit before an entry are skipped; a long-form entry whose
        // varint is cut short (0x42: 2 with "more follows") still counts its code units.
        let bytes: [UInt8] = [0x05, 0x7f, 0x80 | 13 << 3, 4, 0x80 | 14 << 3 | 1, 0x42]
        let table = LineTable(format: .locationTable311, bytes: bytes, firstLine: 1)
        expectLines(table, [0: 3, 1: 3, 2: 4, 5: 4, 6: nil])
    }

    // MARK: Garbage

    /// Deterministic pseudo-random bytes (SplitMix64), so a failure can be replayed.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [VersionTraits.LineTableFormat.lnotabUnsigned, .lnotabSigned, .lineTable310, .locationTable311])
    func garbageTablesGiveContiguousRangesAndNoTrap(format: VersionTraits.LineTableFormat) {
        var random = SplitMix64(state: 0x5eed_0000 + UInt64(String(describing: format).count))
        for _ in 0..<500 {
            let count = Int.random(in: 0..<96, using: &random)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            let table = LineTable(format: format, bytes: bytes, firstLine: Int.random(in: 0..<100_000, using: &random))
            var end = 0
            for range in table.ranges {
                #expect(range.start == end && range.end > range.start, "\(bytes)")
                end = range.end
            }
            for range in table.ranges {
                #expect(table.line(atByteOffset: range.start) == range.line)
                #expect(table.line(atByteOffset: range.end - 1) == range.line)
            }
        }
    }

    @Test func locationTableWithHugeLineDeltasDoesNotTrap() async {
        // Garbage (a code object freed and reused) can hold long-form entries whose
        // varints are near 2^62; summing them must not overflow-trap the reader.
        await #expect(processExitsWith: .success) {
            let huge: [UInt8] = [0x80 | 14 << 3] + [UInt8](repeating: 0x40, count: 10) + [0x04, 0, 0, 0]  // +2^61
            let bytes = Array([[UInt8]](repeating: huge, count: 5).joined())
            let table = LineTable(format: .locationTable311, bytes: bytes, firstLine: 1)
            _ = table.line(atByteOffset: 8)
        }
    }
}
