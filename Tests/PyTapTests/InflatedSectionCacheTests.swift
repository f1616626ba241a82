import Glibc
import PyTap
import XCTest

/// The on-disk cache of inflated sections, on the libc6-dbg debug file of this machine's
/// libc (its `.debug_info` is zlib-compressed, 5.8 MiB inflated).
final class InflatedSectionCacheTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try FileManagerless.temporaryDirectory("pytap-section-cache")
    }

    override func tearDown() {
        FileManagerless.remove(directory, subdirectories: ["sub"])
    }

    private func libcDebugInfo() throws -> (ELFFile, ELFSection) {
        let libc = try ELFFile(path: "/lib/x86_64-linux-gnu/libc.so.6")
        guard let id = libc.buildIDHex else { throw XCTSkip("libc has no build-id") }
        let path = "/usr/lib/debug/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug"
        guard access(path, R_OK) == 0 else { throw XCTSkip("libc6-dbg is not installed (\(path))") }
        let debug = try ELFFile(path: path)
        guard let section = debug.section(named: ".debug_info"), section.flags & ELFSection.flagCompressed != 0 else {
            throw XCTSkip("libc's .debug_info is not compressed here")
        }
        return (debug, section)
    }

    private func inflated(_ elf: ELFFile, _ section: ELFSection) throws -> (UnsafeRawBufferPointer, [UInt8]) {
        let (stream, size) = try elf.compressedStream(of: section)
        var output = [UInt8](repeating: 0, count: size)
        try output.withUnsafeMutableBytes { try elf.inflate(stream, into: $0, section: section) }
        return (stream, output)
    }

    private func onlyFile() -> String? {
        let names = (try? FileManagerless.list(directory))?.filter { !$0.hasPrefix(".") && $0 != "sub" } ?? []
        return names.count == 1 ? directory + "/" + names[0] : nil
    }

    func testAStoredSectionIsMappedBackWithTheSameBytes() throws {
        let (elf, section) = try libcDebugInfo()
        let cache = InflatedSectionCache(directory: directory)
        let (stream, bytes) = try inflated(elf, section)
        XCTAssertNil(cache.cached(elf: elf, section: section, stream: stream, size: bytes.count))
        bytes.withUnsafeBytes { cache.store(elf: elf, section: section, stream: stream, inflated: $0) }
        let mapped = try XCTUnwrap(cache.cached(elf: elf, section: section, stream: stream, size: bytes.count))
        XCTAssertTrue(mapped.bytes[(mapped.bytes.count - bytes.count)...].elementsEqual(bytes))
        // No temporary file is left behind.
        XCTAssertNotNil(onlyFile())
    }

    func testATruncatedOrForeignFileIsNotTaken() throws {
        let (elf, section) = try libcDebugInfo()
        let cache = InflatedSectionCache(directory: directory)
        let (stream, bytes) = try inflated(elf, section)
        bytes.withUnsafeBytes { cache.store(elf: elf, section: section, stream: stream, inflated: $0) }
        let path = try XCTUnwrap(onlyFile())
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0)
        // Cut short (a crash mid-write on a file system that reorders).
        XCTAssertEqual(truncate(path, info.st_size - 1), 0)
        XCTAssertNil(cache.cached(elf: elf, section: section, stream: stream, size: bytes.count))
        // Right size, another header (another build, another format).
        let fd = open(path, O_WRONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(ftruncate(fd, info.st_size), 0)
        XCTAssertEqual(pwrite(fd, "pytap inflated section 2\n", 25, 0), 25)
        close(fd)
        XCTAssertNil(cache.cached(elf: elf, section: section, stream: stream, size: bytes.count))
        // A stream of another size (another compression of the section) is a miss too.
        bytes.withUnsafeBytes { cache.store(elf: elf, section: section, stream: stream, inflated: $0) }
        XCTAssertNotNil(cache.cached(elf: elf, section: section, stream: stream, size: bytes.count))
        XCTAssertNil(cache.cached(elf: elf, section: section, stream: UnsafeRawBufferPointer(rebasing: stream.dropLast()), size: bytes.count))
    }

    func testADirectoryOthersMayWriteIsNotUsed() throws {
        let (elf, section) = try libcDebugInfo()
        let (stream, bytes) = try inflated(elf, section)
        XCTAssertEqual(mkdir(directory + "/sub", 0o777), 0)
        XCTAssertEqual(chmod(directory + "/sub", 0o777), 0)
        let cache = InflatedSectionCache(directory: directory + "/sub")
        bytes.withUnsafeBytes { cache.store(elf: elf, section: section, stream: stream, inflated: $0) }
        XCTAssertEqual(try FileManagerless.list(directory + "/sub"), [])
        XCTAssertNil(cache.cached(elf: elf, section: section, stream: stream, size: bytes.count))
    }

    func testSmallSectionsAreNotCached() throws {
        let (elf, _) = try libcDebugInfo()
        let section = try XCTUnwrap(elf.sections.first { $0.flags & ELFSection.flagCompressed != 0 && $0.name != ".debug_info"
            && ((try? elf.compressedStream(of: $0).size) ?? .max) < InflatedSectionCache.minimumSize })
        let (stream, bytes) = try inflated(elf, section)
        let cache = InflatedSectionCache(directory: directory)
        bytes.withUnsafeBytes { cache.store(elf: elf, section: section, stream: stream, inflated: $0) }
        XCTAssertNil(onlyFile())
    }
}

/// Directory listing without Foundation.
enum FileManagerless {
    /// A new empty directory under /tmp.
    static func temporaryDirectory(_ prefix: String) throws -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
        return String(cString: made)
    }

    /// Removes a directory made by `temporaryDirectory`, its files and its empty subdirectories.
    static func remove(_ path: String, subdirectories: [String] = []) {
        for name in (try? list(path)) ?? [] { unlink(path + "/" + name) }
        for name in subdirectories { rmdir(path + "/" + name) }
        rmdir(path)
    }

    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw XCTSkip("cannot list \(path)") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
