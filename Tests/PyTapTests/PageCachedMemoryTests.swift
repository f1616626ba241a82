import PyTap
import XCTest

/// Word-sized reads of a page are served from one read of the page; reads that cross a
/// page or touch a partly mapped page go to the memory below, with its errors.
final class PageCachedMemoryTests: XCTestCase {
    func testWordReadsOfAPageCostOneRead() throws {
        let fake = FakeMemory()
        fake.map(at: 0x7000_0000, size: 8192)
        fake.write(Array(0..<8).map { UInt8($0) }, at: 0x7000_0010)
        let memory = PageCachedMemory(base: fake)
        let before = fake.readCount
        for word in 0..<512 {
            _ = try memory.readBytes(0x7000_0000 + UInt64(word) * 8, count: 8)
        }
        XCTAssertEqual(fake.readCount - before, 1)
        XCTAssertEqual(try memory.readBytes(0x7000_0010, count: 8), Array(0..<8).map { UInt8($0) })
        // Across the page boundary: straight to the memory below.
        XCTAssertEqual(try memory.readBytes(0x7000_0ffc, count: 8).count, 8)
    }

    func testAPartlyMappedPageIsReadAsAsked() throws {
        let fake = FakeMemory()
        fake.map(at: 0x7100_0000, size: 0x100)
        let memory = PageCachedMemory(base: fake)
        XCTAssertEqual(try memory.readBytes(0x7100_0008, count: 8).count, 8)
        XCTAssertThrowsError(try memory.readBytes(0x7100_0200, count: 8))
    }
}
