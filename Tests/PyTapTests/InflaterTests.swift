import Glibc
import PyTap
import XCTest

/// zlib and libdeflate inflate every compressed section of a real debug file (libc6-dbg's)
/// to the same bytes, and both refuse a damaged stream or a wrong size.
final class InflaterTests: XCTestCase {
    private func libcDebugFile() throws -> ELFFile {
        let libc = try ELFFile(path: "/lib/x86_64-linux-gnu/libc.so.6")
        guard let id = libc.buildIDHex else { throw XCTSkip("libc has no build-id") }
        let path = "/usr/lib/debug/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug"
        guard access(path, R_OK) == 0 else { throw XCTSkip("libc6-dbg is not installed (\(path))") }
        return try ELFFile(path: path)
    }

    private func inflate(_ stream: [UInt8], size: Int, with inflater: Inflater) -> [UInt8]? {
        var output = [UInt8](repeating: 0xAA, count: size)
        let ok = stream.withUnsafeBytes { stream in output.withUnsafeMutableBytes { inflater.inflate(stream, into: $0) } }
        return ok ? output : nil
    }

    func testSectionContentsAreWhatZlibInflates() throws {
        // The path pytap reads sections by (`ELFFile.contents`, libdeflate unless
        // PYTAP_INFLATE=zlib) against zlib, on the largest compressed section.
        let debug = try libcDebugFile()
        let section = try XCTUnwrap(debug.section(named: ".debug_info"))
        XCTAssertNotEqual(section.flags & ELFSection.flagCompressed, 0)
        let (stream, size) = try debug.compressedStream(of: section)
        XCTAssertEqual(try debug.contents(of: section), try XCTUnwrap(inflate(Array(stream), size: size, with: .zlib)))
    }

    func testBothInflateEveryCompressedSectionAlike() throws {
        let debug = try libcDebugFile()
        var compared = 0
        for section in debug.sections where section.flags & ELFSection.flagCompressed != 0 {
            let (stream, size) = try debug.compressedStream(of: section)
            let bytes = Array(stream)
            let byZlib = try XCTUnwrap(inflate(bytes, size: size, with: .zlib), section.name)
            XCTAssertEqual(inflate(bytes, size: size, with: .libdeflate), byZlib, section.name)
            compared += 1
        }
        XCTAssertGreaterThanOrEqual(compared, 4, "libc6-dbg has .debug_info, .debug_line, .debug_abbrev, .debug_str compressed")
    }

    func testBothRefuseADamagedStreamOrAWrongSize() throws {
        let debug = try libcDebugFile()
        let section = try XCTUnwrap(debug.section(named: ".debug_info"))
        let (stream, size) = try debug.compressedStream(of: section)
        var damaged = Array(stream)
        damaged[damaged.count / 2] ^= 0x55
        var truncated = Array(stream)
        truncated.removeLast(truncated.count / 3)
        for inflater in [Inflater.zlib, .libdeflate] {
            XCTAssertNil(inflate(damaged, size: size, with: inflater), "\(inflater): a flipped byte")
            XCTAssertNil(inflate(truncated, size: size, with: inflater), "\(inflater): a truncated stream")
            XCTAssertNil(inflate(Array(stream), size: size - 1, with: inflater), "\(inflater): one byte too few")
            XCTAssertNil(inflate(Array(stream), size: size + 1, with: inflater), "\(inflater): one byte too many")
            XCTAssertNil(inflate([], size: size, with: inflater), "\(inflater): no stream")
        }
    }
}
