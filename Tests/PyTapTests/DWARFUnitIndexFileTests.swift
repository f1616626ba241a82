import Glibc
@testable import PyTap
import XCTest

/// The on-disk unit headers and unit ranges of a debug file (`DWARFUnitIndexFile`), on pyenv's
/// libpython3.11 (DWARF in the file itself).
final class DWARFUnitIndexFileTests: XCTestCase {
    private var directory = ""
    private let path = "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"

    override func setUpWithError() throws {
        guard access(path, R_OK) == 0 else { throw XCTSkip("\(path) is not installed") }
        directory = try FileManagerless.temporaryDirectory("pytap-dwarf-units")
    }

    override func tearDown() {
        if !directory.isEmpty { FileManagerless.remove(directory) }
    }

    private func onlyFile() throws -> String {
        let names = try FileManagerless.list(directory)
        XCTAssertEqual(names.count, 1, "\(names)")
        return directory + "/" + (names.first ?? "")
    }

    /// Addresses spread over the file's functions, and what an index without a cache answers.
    private func expectations(_ elf: ELFFile) throws -> [(UInt64, [SourceFunction])] {
        let reference = try XCTUnwrap(SourceLineIndex(elf: elf))
        let functions = SymbolIndex(elf: elf).functions
        let picked = stride(from: 0, to: functions.count, by: max(1, functions.count / 60)).map { functions[$0] }
        return picked.map { ($0.address + $0.size / 2, reference.functions(at: $0.address + $0.size / 2)) }
    }

    private func assertAnswers(_ index: SourceLineIndex, _ expected: [(UInt64, [SourceFunction])],
                               file: StaticString = #filePath, line: UInt = #line) {
        for (address, functions) in expected {
            XCTAssertEqual(index.functions(at: address), functions, "0x\(String(address, radix: 16))", file: file, line: line)
        }
    }

    func testStoredUnitsAreMappedBackAndAnswerAlike() throws {
        let elf = try ELFFile(path: path)
        let cache = CacheDirectory(path: directory)
        let expected = try expectations(elf)
        XCTAssertTrue(try FileManagerless.list(directory).isEmpty, "no directory given, nothing written")
        let first = try XCTUnwrap(SourceLineIndex(elf: elf, directory: cache))
        XCTAssertFalse(first.unitsFromCache)
        XCTAssertTrue(try onlyFile().hasSuffix("-dwarf-units"))
        let second = try XCTUnwrap(SourceLineIndex(elf: elf, directory: cache))
        XCTAssertTrue(second.unitsFromCache)
        XCTAssertEqual(second.context.units.map(\.offset), first.context.units.map(\.offset))
        XCTAssertEqual(second.context.units.map(\.end), first.context.units.map(\.end))
        XCTAssertEqual(second.context.units.map(\.firstDIEOffset), first.context.units.map(\.firstDIEOffset))
        XCTAssertEqual(second.context.units.map(\.abbreviationOffset), first.context.units.map(\.abbreviationOffset))
        XCTAssertGreaterThan(second.context.units.count, 100)
        assertAnswers(second, expected)
    }

    func testACorruptOrStaleFileIsNotTakenAndIsRewritten() throws {
        let elf = try ELFFile(path: path)
        let cache = CacheDirectory(path: directory)
        let expected = try expectations(elf)
        _ = SourceLineIndex(elf: elf, directory: cache)
        let file = try onlyFile()
        var info = stat()
        XCTAssertEqual(stat(file, &info), 0)
        let size = Int(info.st_size)
        // The text header ends at its first NUL, padded to 16 bytes.
        let mapped = try MappedFile(path: file)
        let headerSize = try withExtendedLifetime(mapped) { try XCTUnwrap(mapped.bytes.firstIndex(of: 0)) / 16 * 16 + 16 }
        func corrupt(_ what: String, _ damage: (Int32) -> Void) throws {
            let fd = open(file, O_WRONLY)
            XCTAssertGreaterThanOrEqual(fd, 0)
            damage(fd)
            close(fd)
            let index = try XCTUnwrap(SourceLineIndex(elf: elf, directory: cache))
            XCTAssertFalse(index.unitsFromCache, what)
            assertAnswers(index, expected)
            XCTAssertTrue(try XCTUnwrap(SourceLineIndex(elf: elf, directory: cache)).unitsFromCache, "\(what): rewritten")
        }
        try corrupt("cut short") { XCTAssertEqual(ftruncate($0, off_t(size - 1)), 0) }
        try corrupt("a unit's end changed") { fd in
            var far: UInt64 = 1 << 40
            XCTAssertEqual(pwrite(fd, &far, 8, off_t(headerSize + 24)), 8)
        }
        try corrupt("checksum changed") { fd in
            var zero: UInt64 = 0
            XCTAssertEqual(pwrite(fd, &zero, 8, off_t(size - 8)), 8)
        }
        try corrupt("another format version") { XCTAssertEqual(pwrite($0, "pytap dwarf units 9\n", 20, 0), 20) }
        try corrupt("garbage") { fd in
            XCTAssertEqual(ftruncate(fd, 0), 0)
            XCTAssertEqual(pwrite(fd, "pytap dwarf units 2\n\0", 21, 0), 21)
        }
    }

    func testUnitsThatDoNotFitTheSectionsAreRefusedEvenWithAGoodChecksum() throws {
        let elf = try ELFFile(path: path)
        let cache = CacheDirectory(path: directory)
        let index = try XCTUnwrap(SourceLineIndex(elf: elf, directory: cache))
        let objects = index.context.objects
        XCTAssertNotNil(DWARFUnitIndexFile.load(from: cache, elf: elf, supplementary: nil, objects: objects))
        let units = index.context.units
        func refused(_ what: String, units: [DWARFUnit], ranges: [(low: UInt64, high: UInt64, unit: Int)]) {
            DWARFUnitIndexFile.store(units: units, ranges: ranges, in: cache, elf: elf, supplementary: nil, objects: objects)
            XCTAssertNil(DWARFUnitIndexFile.load(from: cache, elf: elf, supplementary: nil, objects: objects), what)
        }
        var past = units
        past[past.count - 1].end = objects[0].info.count + 1
        refused("a unit past its section", units: past, ranges: [])
        var overlapping = units
        overlapping[1].offset = overlapping[0].offset
        refused("overlapping units", units: overlapping, ranges: [])
        var version = units
        version[0].version = 6
        refused("an unknown version", units: version, ranges: [])
        refused("a range naming no unit", units: units, ranges: [(0x1000, 0x2000, units.count)])
        refused("ranges out of order", units: units, ranges: [(0x2000, 0x3000, 0), (0x1000, 0x1800, 1)])
        refused("an empty range", units: units, ranges: [(0x2000, 0x2000, 0)])
        // The stored file was of another supplementary file (here: none vs. one).
        DWARFUnitIndexFile.store(units: units, ranges: [], in: cache, elf: elf, supplementary: nil, objects: objects)
        XCTAssertNil(DWARFUnitIndexFile.load(from: cache, elf: elf, supplementary: elf, objects: objects))
    }
}
