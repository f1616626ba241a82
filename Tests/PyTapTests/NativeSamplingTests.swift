import XCTest
@testable import PyTap

/// The pieces of `sample --native` that need no kernel: a sample's memory view, kernel
/// symbol lookup and the placeholder merge.
final class NativeSamplingTests: XCTestCase {
    func testCapturedMemoryServesCopiesAndRefusesReadsThatMixThemWithLiveMemory() throws {
        let live = FakeMemory(heapStart: 0x1000, heapSize: 0x1000)
        live.u64(0x1111, at: 0x1100)
        live.u64(0x2222, at: 0x1108)
        live.u64(0x3333, at: 0x1200)
        let memory = CapturedMemory(live: live)
        // The copy says 0xaaaa where live memory now says 0x1111.
        memory.add(RemoteBytes(address: 0x1100, bytes: withUnsafeBytes(of: UInt64(0xaaaa).littleEndian) { Array($0) }
                                  + withUnsafeBytes(of: UInt64(0xbbbb).littleEndian) { Array($0) }))
        XCTAssertEqual(try memory.readPointer(0x1100), 0xaaaa)
        XCTAssertEqual(try memory.readPointer(0x1108), 0xbbbb)
        XCTAssertEqual(try memory.readPointer(0x1200), 0x3333)
        XCTAssertThrowsError(try memory.readBytes(0x10f8, count: 16)) { error in
            XCTAssertEqual(error as? MemoryReadError, .unmapped(address: 0x10f8, length: 16))
        }
        XCTAssertThrowsError(try memory.readBytes(0x1108, count: 16))
        memory.reset()
        XCTAssertEqual(try memory.readPointer(0x1100), 0x1111)
    }

    func testStackEndsKeepTheHighestEndAboveTheStackPointerPerThread() {
        var ends = StackEnds()
        XCTAssertEqual(ends.learn(tid: 7, stackPointer: 0x7000_1000, end: 0x7000_2f00), 0x7000_2f00)
        // The same end again, or a lower one, changes nothing the program needs to hear.
        XCTAssertNil(ends.learn(tid: 7, stackPointer: 0x7000_1800, end: 0x7000_2f00))
        XCTAssertNil(ends.learn(tid: 7, stackPointer: 0x7000_1000, end: 0x7000_2000))
        XCTAssertEqual(ends.learn(tid: 7, stackPointer: 0x7000_1000, end: 0x7000_3000), 0x7000_3000)
        // An end at or below sp (an unwind from an alternate signal stack) is not the stack's.
        XCTAssertNil(ends.learn(tid: 8, stackPointer: 0x7000_1000, end: 0x7000_1000))
        XCTAssertNil(ends.learn(tid: 8, stackPointer: 0x7000_1000, end: 0x6000_0000))
        XCTAssertEqual(ends.ends, [7: 0x7000_3000])
        XCTAssertTrue(ends.forget(tid: 7))
        XCTAssertFalse(ends.forget(tid: 7))
        XCTAssertEqual(ends.learn(tid: 7, stackPointer: 0x1000, end: 0x2000), 0x2000)
    }

    func testKernelSymbolsNameTheEnclosingFunctionAndSkipDataAndZeroAddresses() {
        let symbols = KernelSymbols(text: """
            ffffffff81000000 T _stext
            ffffffff81001000 t do_one_thing
            ffffffff81002000 D some_data
            ffffffff81003000 T vfs_read
            ffffffffc0000000 t module_function\t[some_module]
            0000000000000000 T hidden
            """)
        XCTAssertEqual(symbols.count, 4)
        XCTAssertEqual(symbols.name(at: 0xffffffff81001010), "do_one_thing")
        XCTAssertEqual(symbols.name(at: 0xffffffff81002800), "do_one_thing")
        XCTAssertEqual(symbols.name(at: 0xffffffff81003004), "vfs_read")
        XCTAssertEqual(symbols.name(at: 0xffffffffc0000010), "module_function")
        XCTAssertNil(symbols.name(at: 0x1000))
        XCTAssertEqual(KernelSymbols(text: "0000000000000000 T hidden\n").count, 0)
    }

    func testTheEmbeddedBPFObjectIsAnELFFileForTheBPFMachine() throws {
        let bytes = BPFSampleProgram.objectBytes()
        XCTAssertEqual(Array(bytes.prefix(4)), [0x7f, 0x45, 0x4c, 0x46])
        // e_machine at 18: EM_BPF = 247.
        XCTAssertEqual(UInt16(bytes[18]) | UInt16(bytes[19]) << 8, 247)
    }
}
