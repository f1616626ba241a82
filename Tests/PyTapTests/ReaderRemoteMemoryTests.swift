import Testing
import PyTap

/// The `RemoteMemory` helpers every reader builds on, and the fake memory the reader tests use.
@Suite struct ReaderRemoteMemoryTests {
    @Test func readHelpersDecodeLittleEndianAndRefuseGarbageSizes() throws {
        let memory = FakeMemory()
        let address = memory.allocate(32)
        memory.u64(0x1122_3344_5566_7788, at: address)
        memory.i32(-2, at: address + 8)
        memory.u8(0xab, at: address + 12)
        #expect(try memory.readPointer(address) == 0x1122_3344_5566_7788)
        #expect(try memory.readInteger(address + 8, as: Int32.self) == -2)
        #expect(try memory.readInteger(address, as: UInt16.self) == 0x7788)
        #expect(try memory.readBytes(address + 12, count: 1) == [0xab])
        #expect(try memory.readBytes(address, count: 0) == [])
        // Lengths beyond what any structure needs are refused before allocating.
        #expect(throws: MemoryReadError.tooLarge(address: address, length: maximumRemoteRead + 1)) {
            try memory.readBytes(address, count: maximumRemoteRead + 1)
        }
        #expect(throws: MemoryReadError.tooLarge(address: address, length: -1)) { try memory.readBytes(address, count: -1) }
        #expect(throws: MemoryReadError.tooLarge(address: address, length: Int.max)) { try memory.readStruct(address, count: Int.max) }
        #expect(throws: MemoryReadError.unmapped(address: 8, length: 8)) { try memory.readPointer(8) }
    }

    @Test func readManyReportsEachRangeOnItsOwn() throws {
        let memory = FakeMemory()
        let address = memory.allocate(16)
        memory.u32(7, at: address)
        let results = memory.readMany([(address, 4), (FakeInterpreter.unmapped, 4), (address, -3), (address, 0)])
        #expect(results.count == 4)
        #expect(try results[0].get() == [7, 0, 0, 0])
        #expect(throws: MemoryReadError.unmapped(address: FakeInterpreter.unmapped, length: 4)) { try results[1].get() }
        #expect(throws: MemoryReadError.tooLarge(address: address, length: -3)) { try results[2].get() }
        #expect(try results[3].get() == [])
    }

    @Test func remoteBytesChecksEveryFieldAgainstTheCopy() throws {
        let copy = RemoteBytes(address: 0x1000, bytes: [1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])
        #expect(copy.count == 10)
        #expect(try copy.u64(0) == 1)
        #expect(try copy.u16(8) == 0xffff)
        #expect(try copy.i64(0) == 1)
        #expect(try copy.u8(9) == 0xff)
        #expect(throws: MemoryReadError.fieldOutOfRange(offset: 4, size: 8, available: 10)) { try copy.u64(4) }
        #expect(throws: MemoryReadError.fieldOutOfRange(offset: -1, size: 1, available: 10)) { try copy.u8(-1) }
        #expect(throws: MemoryReadError.fieldOutOfRange(offset: Int.max, size: 4, available: 10)) { try copy.u32(Int.max) }
        #expect(Array(try copy.slice(8, count: 2)) == [0xff, 0xff])
        #expect(try copy.slice(10, count: 0).isEmpty)
        #expect(throws: MemoryReadError.self) { try copy.slice(9, count: 2) }
        #expect(throws: MemoryReadError.self) { try copy.slice(0, count: -1) }
        #expect(throws: MemoryReadError.self) { try copy.slice(Int.max, count: 1) }
        // Fields smaller than 8 bytes from an empty copy fail too.
        #expect(throws: MemoryReadError.self) { try RemoteBytes(address: 0, bytes: []).u8(0) }
    }

    @Test func remoteBytesContainsOnlyRangesInsideTheCopy() {
        let copy = RemoteBytes(address: 0x1000, bytes: [UInt8](repeating: 0, count: 0x100))
        #expect(copy.contains(0x1000, count: 0x100))
        #expect(copy.contains(0x10f8, count: 8))
        #expect(!copy.contains(0x10f9, count: 8))
        #expect(!copy.contains(0xfff, count: 1))
        #expect(!copy.contains(0x1000, count: 0x101))
        #expect(!copy.contains(UInt64.max, count: 8))
        #expect(!RemoteBytes(address: 0, bytes: []).contains(0, count: 8))
    }

    @Test func fakeMemoryFailsAfterNReadsAndRunsItsHookBeforeEachRead() throws {
        let memory = FakeMemory()
        let address = memory.allocate(8)
        memory.u64(1, at: address)
        var seen = [UInt64]()
        memory.beforeRead = { memory, readAddress, count in
            seen.append(readAddress)
            if count == 8 { memory.u64(2, at: address) }
        }
        #expect(try memory.readPointer(address) == 2)
        memory.failAfterReads = 2
        #expect(try memory.readBytes(address, count: 4) == [2, 0, 0, 0])
        #expect(throws: MemoryReadError.processGone) { try memory.readPointer(address) }
        #expect(throws: MemoryReadError.processGone) { try memory.readPointer(address) }
        #expect(memory.readCount == 4)
        #expect(seen == [address, address])
        // A read that runs off the end of a region is unmapped even if it starts inside.
        memory.failAfterReads = nil
        let end = memory.heapStart + (1 << 20)
        #expect(throws: MemoryReadError.unmapped(address: end - 4, length: 8)) { try memory.readPointer(end - 4) }
        #expect(throws: MemoryReadError.unmapped(address: UInt64.max - 3, length: 8)) { try memory.readPointer(UInt64.max - 3) }
    }
}
