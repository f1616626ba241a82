import Testing
import PyTap

/// `allThreadStates` re-reads unchanged interpreter and thread lists in one batched read
/// (`ThreadListChain`), and notices every change to them.
@Suite struct ReaderThreadListChainTests {
    static let versions = ["2.7.18", "3.6.15", "3.10.13", "3.11.7", "3.12.1", "3.13.0", "3.14.0"]

    @Test(arguments: versions)
    func unchangedListsAreReadInOneBatch(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let sub = fake.addInterpreter()
        let a = fake.addThread(ident: 0xa000, nativeID: 11)
        let b = fake.addThread(ident: 0xb000, nativeID: 12)
        let c = fake.addThread(ident: 0xc000, nativeID: 13, to: sub)
        let reader = try fake.reader()
        #expect(try reader.allThreadStates().map(\.address) == [a, b, c])

        fake.memory.resetLog()
        let again = try reader.allThreadStates()
        #expect(again.map(\.address) == [a, b, c])
        #expect(again.map(\.interpreter) == [fake.mainInterpreter, fake.mainInterpreter, sub])
        #expect(again.map(\.ident) == [0xa000, 0xb000, 0xc000])
        if fake.has(.tstateNativeThreadID) { #expect(again.map(\.nativeThreadID) == [11, 12, 13]) }
        // The head, each interpreter's next and thread-list head, each thread state: one batch, nothing else.
        #expect(fake.memory.batchLog == [1 + 2 * 2 + 3])
        #expect(fake.memory.readCount == 1 + 2 * 2 + 3)

        // The copies in the batch are fresh: a changed ident shows.
        fake.memory.u64(0xbbbb, at: b + fake.offset(.tstateThreadID))
        #expect(try reader.allThreadStates().map(\.ident) == [0xa000, 0xbbbb, 0xc000])
    }

    @Test(arguments: versions)
    func changedListsAreReadAgain(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let a = fake.addThread(ident: 0xa000)
        let b = fake.addThread(ident: 0xb000)
        let reader = try fake.reader()
        #expect(try reader.allThreadStates().map(\.address) == [a, b])

        // A thread appended, then one unlinked from the middle, then the first one gone.
        let c = fake.addThread(ident: 0xc000)
        #expect(try reader.allThreadStates().map(\.address) == [a, b, c])
        fake.memory.pointer(c, at: a + fake.offset(.tstateNext))
        #expect(try reader.allThreadStates().map(\.address) == [a, c])
        fake.memory.pointer(c, at: fake.mainInterpreter + fake.offset(.interpThreadsHead))
        #expect(try reader.allThreadStates().map(\.address) == [c])
        // A new interpreter with a thread; then every thread gone.
        let sub = fake.addInterpreter()
        let d = fake.addThread(ident: 0xd000, to: sub)
        #expect(try reader.allThreadStates().map(\.address) == [c, d])
        fake.memory.pointer(0, at: fake.mainInterpreter + fake.offset(.interpThreadsHead))
        fake.memory.pointer(0, at: sub + fake.offset(.interpThreadsHead))
        #expect(try reader.allThreadStates().isEmpty)
        #expect(try reader.allThreadStates().isEmpty)
    }

    @Test func unreadableThreadStateInTheBatchFallsBackToTheReadWithItsError() throws {
        let fake = try FakeInterpreter(version: "3.12.1")
        let a = fake.addThread(ident: 0xa000)
        let reader = try fake.reader()
        #expect(try reader.allThreadStates().map(\.address) == [a])
        // The list now leads to an unmapped thread state: the link-by-link read names it.
        fake.memory.pointer(FakeInterpreter.unmapped, at: a + fake.offset(.tstateNext))
        #expect(throws: StructureReadError.self) { try reader.allThreadStates() }
    }
}
