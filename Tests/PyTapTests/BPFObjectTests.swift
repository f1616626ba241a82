import Glibc
import XCTest
@testable import PyTap

/// The BPF object layer on the running kernel: load, a uprobe and a uretprobe on a libc
/// function of this very process, maps, the ring buffer, and detach.
final class BPFObjectTests: XCTestCase {
    /// libc's path as this process maps it, and the file offset of `labs` in it.
    private func libcFunction(_ name: String) throws -> (path: String, offset: UInt64) {
        let maps = try ProcFiles.readString("/proc/self/maps")
        guard let line = maps.split(separator: "\n").first(where: { $0.hasSuffix("/libc.so.6") }),
              let path = line.split(separator: " ", omittingEmptySubsequences: true).last else {
            throw XCTSkip("libc.so.6 is not mapped by name in this process")
        }
        let elf = try ELFFile(path: String(path))
        guard let symbol = elf.symbol(named: name), let offset = elf.fileOffset(ofVirtualAddress: symbol.value) else {
            throw XCTSkip("\(name) not found in \(path)")
        }
        return (String(path), offset)
    }

    func testUprobeAndUretprobeCountEveryCallAndStopWhenDetached() throws {
        let object = try BPFObject(name: "selftest", hex: BPFSelftestProgramObject.hex)
        do {
            try object.load()
        } catch let error as NativeCaptureUnavailable {
            if getuid() != 0 { throw XCTSkip("BPF needs root here: \(error)") }
            throw error
        }
        let (path, offset) = try libcFunction("labs")
        let entry = try object.attachUprobe(program: "on_entry", pid: getpid(), path: path, offset: offset, cookie: 77)
        try object.attachUprobe(program: "on_return", pid: getpid(), path: path, offset: offset, returnProbe: true)
        try object.openRing("events")
        // Through a function pointer the compiler cannot fold: each call is a real call.
        let call: @convention(c) (Int) -> Int = labs
        var sum = 0
        for value in 1...10 { sum &+= call(-value) }
        XCTAssertEqual(sum, 55)
        let hits = try object.map("hits")
        XCTAssertEqual(hits.lookup(UInt32(0), as: UInt64.self), 10)
        XCTAssertEqual(hits.lookup(UInt32(1), as: UInt64.self), 10)
        var arguments = [Int](), returns = [Int](), cookies = Set<UInt64>()
        try object.poll(timeout: 100) { record in
            let argument = Int(bitPattern: UInt(record.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            if record.loadUnaligned(fromByteOffset: 20, as: UInt32.self) == 0 {
                arguments.append(argument)
                cookies.insert(record.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            } else {
                returns.append(argument)
            }
            return true
        }
        XCTAssertEqual(arguments, (1...10).map { -$0 })
        XCTAssertEqual(returns, Array(1...10))
        XCTAssertEqual(cookies, [77])
        XCTAssertEqual(hits.keys(as: UInt32.self).sorted(), [0, 1])

        object.detach(entry)
        _ = call(-1)
        XCTAssertEqual(hits.lookup(UInt32(0), as: UInt64.self), 10, "a detached uprobe still fired")
        // (Kernel 6.18 also drops the uretprobe at the same address here when its twin is
        // detached: probes at one address are detached together, never one by one.)
        object.detachAll()
        let returnsBefore = hits.lookup(UInt32(1), as: UInt64.self)
        _ = call(-1)
        XCTAssertEqual(hits.lookup(UInt32(0), as: UInt64.self), 10)
        XCTAssertEqual(hits.lookup(UInt32(1), as: UInt64.self), returnsBefore, "a detached uretprobe still fired")
        object.close()
        _ = call(-1)
        XCTAssertNil(try? object.map("hits"))
    }

    func testAProgramNameThatDoesNotExistIsAnErrorNotATrap() throws {
        let object = try BPFObject(name: "selftest", hex: BPFSelftestProgramObject.hex)
        XCTAssertThrowsError(try object.skipProgram("no_such_program"))
        do { try object.load() } catch { throw XCTSkip("BPF not available: \(error)") }
        XCTAssertThrowsError(try object.attachUprobe(program: "no_such_program", pid: getpid(), path: "/bin/true", offset: 0))
        XCTAssertThrowsError(try object.map("no_such_map"))
    }
}
