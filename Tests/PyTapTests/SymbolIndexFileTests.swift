import Glibc
@testable import PyTap
import XCTest

/// The on-disk symbol index (`SymbolIndexFile`), on this machine's libc and its libc6-dbg
/// debug file when installed.
final class SymbolIndexFileTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try FileManagerless.temporaryDirectory("pytap-symbol-cache")
    }

    override func tearDown() {
        FileManagerless.remove(directory)
    }

    private func libc() throws -> (ELFFile, ELFFile?) {
        let libc = try ELFFile(path: "/lib/x86_64-linux-gnu/libc.so.6")
        guard let id = libc.buildIDHex else { throw XCTSkip("libc has no build-id") }
        let path = "/usr/lib/debug/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug"
        return (libc, access(path, R_OK) == 0 ? try ELFFile(path: path) : nil)
    }

    private func onlyFile() throws -> String {
        let names = try FileManagerless.list(directory)
        XCTAssertEqual(names.count, 1, "\(names)")
        return directory + "/" + (names.first ?? "")
    }

    func testAStoredIndexIsMappedBackAndAnswersAlike() throws {
        let (elf, debug) = try libc()
        let cache = CacheDirectory(path: directory)
        XCTAssertNil(SymbolIndexFile.load(from: cache, elf: elf, debugFile: debug))
        let built = SymbolIndexCache(directory: cache).index(for: elf, debugFile: debug)
        let stored = try XCTUnwrap(SymbolIndexFile.load(from: cache, elf: elf, debugFile: debug))
        XCTAssertGreaterThan(stored.count, 1000)
        // A new process's cache (another SymbolIndexCache) maps the file.
        let mapped = SymbolIndexCache(directory: cache).index(for: elf, debugFile: debug)
        XCTAssertEqual(mapped.functions, built.functions)
        for function in built.functions.prefix(5000) {
            for address in [function.address, function.address + function.size / 2, function.address + function.size] {
                XCTAssertEqual(mapped.lookup(address), built.lookup(address), "0x\(String(address, radix: 16))")
            }
        }
        _ = try onlyFile()
    }

    func testADebugFileInstalledOrRemovedSinceIsAMiss() throws {
        let (elf, debug) = try libc()
        guard let debug else { throw XCTSkip("libc6-dbg is not installed") }
        let cache = CacheDirectory(path: directory)
        _ = SymbolIndexCache(directory: cache).index(for: elf, debugFile: nil)
        XCTAssertNil(SymbolIndexFile.load(from: cache, elf: elf, debugFile: debug))
        let withDebug = SymbolIndexCache(directory: cache).index(for: elf, debugFile: debug)
        XCTAssertNotNil(SymbolIndexFile.load(from: cache, elf: elf, debugFile: debug), "rewritten for the new pair")
        XCTAssertEqual(withDebug.functions, SymbolIndex(elf: elf, debugFile: debug).functions)
    }

    func testACorruptFileIsNotTakenAndIsRewritten() throws {
        let (elf, debug) = try libc()
        let cache = CacheDirectory(path: directory)
        let expected = SymbolIndexCache(directory: cache).index(for: elf, debugFile: debug).functions
        let path = try onlyFile()
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0)
        let headerSize = try XCTUnwrap(SymbolIndexFile.load(from: cache, elf: elf, debugFile: debug)).headerSize
        func corrupt(_ damage: (Int32) -> Void) throws {
            let fd = open(path, O_WRONLY)
            XCTAssertGreaterThanOrEqual(fd, 0)
            damage(fd)
            close(fd)
            XCTAssertNil(SymbolIndexFile.load(from: cache, elf: elf, debugFile: debug))
            // The next index is built again (same answers) and the file rewritten.
            XCTAssertEqual(SymbolIndexCache(directory: cache).index(for: elf, debugFile: debug).functions, expected)
            XCTAssertNotNil(SymbolIndexFile.load(from: cache, elf: elf, debugFile: debug))
        }
        // Cut short.
        try corrupt { XCTAssertEqual(ftruncate($0, info.st_size - 1), 0) }
        // Addresses out of order (second entry's address made 0).
        try corrupt { fd in
            var zero: UInt64 = 0
            XCTAssertEqual(pwrite(fd, &zero, 8, off_t(headerSize + SymbolIndexFile.entrySize)), 8)
        }
        // A name past the name bytes.
        try corrupt { fd in
            var far = UInt32.max
            XCTAssertEqual(pwrite(fd, &far, 4, off_t(headerSize + 16)), 4)
        }
        // Another format version.
        try corrupt { XCTAssertEqual(pwrite($0, "pytap symbol index 9\n", 21, 0), 21) }
    }

    func testTheDirectoryIsBounded() throws {
        let (elf, debug) = try libc()
        for index in 0..<3 {
            let fd = open(directory + "/old\(index)", O_WRONLY | O_CREAT, 0o600)
            XCTAssertEqual(ftruncate(fd, 1 << 20), 0)
            var times = [timespec(tv_sec: 1000 + index, tv_nsec: 0), timespec(tv_sec: 1000 + index, tv_nsec: 0)]
            XCTAssertEqual(futimens(fd, &times), 0)
            close(fd)
        }
        // Room for the index and one old file: the two oldest go.
        let functions = SymbolIndex(elf: elf, debugFile: debug).functions
        let indexSize = functions.count * SymbolIndexFile.entrySize + functions.reduce(0) { $0 + $1.name.utf8.count } + 256
        let cache = CacheDirectory(path: directory, maximumBytes: (1 << 20) + indexSize)
        _ = SymbolIndexCache(directory: cache).index(for: elf, debugFile: debug)
        let names = try FileManagerless.list(directory)
        XCTAssertEqual(names.filter { $0.hasPrefix("old") }, ["old2"])
        XCTAssertEqual(names.filter { $0.hasSuffix("-symbols") }.count, 1)
    }
}
