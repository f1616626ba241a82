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
        fake.unlinkThread(b)
        #expect(try reader.allThreadStates().map(\.address) == [a, c])
        fake.unlinkThread(a)
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

    /// A thread state as malloc leaves it once freed: its first 16 bytes (`prev` and `next`
    /// on 3.x, `next` and `interp` on 2.7) hold the allocator's own links, the rest is as it was.
    static func freedThreadState(_ fake: FakeInterpreter) -> UInt64 {
        let other = fake.memory.allocate(512)
        fake.memory.pointer(fake.mainInterpreter, at: other + fake.offset(.tstateInterp))
        let freed = fake.memory.allocate(512)
        fake.memory.pointer(fake.mainInterpreter, at: freed + fake.offset(.tstateInterp))
        fake.memory.u64(0xdead, at: freed + fake.offset(.tstateThreadID))
        fake.memory.pointer(other, at: freed)                     // tcache's next free chunk
        fake.memory.u64(0x5a17_c0de_0bad_f00d, at: freed + 8)     // tcache's key
        return freed
    }

    // A churning process (a thread exiting as its state is read) must not show garbage threads.
    @Test(arguments: versions)
    func aStateFreedAfterItsPointerWasReadIsReadAgain(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let a = fake.addThread(ident: 0xa000)
        let b = fake.addThread(ident: 0xb000)
        let freed = Self.freedThreadState(fake)
        let reader = try fake.reader()
        // The first time, the head still points to a state whose thread has exited.
        let headReads = Self.onHeadRead(fake) { read in read == 1 ? freed : a }
        #expect(try reader.allThreadStates().map(\.address) == [a, b])
        #expect(headReads.count == 2)
    }

    final class Counter { var count = 0 }

    /// Before each read of the main interpreter's thread-list head (counted from 1), sets
    /// the head to what `head` says (nil: leaves it).
    static func onHeadRead(_ fake: FakeInterpreter, head: @escaping (Int) -> UInt64?) -> Counter {
        let location = fake.mainInterpreter + fake.offset(.interpThreadsHead)
        let reads = Counter()
        fake.memory.beforeRead = { memory, address, _ in
            guard address == location else { return }
            reads.count += 1
            if let value = head(reads.count) { memory.pointer(value, at: location) }
        }
        return reads
    }

    @Test(arguments: versions)
    func aListThatStaysInconsistentIsAnErrorNotGarbage(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        fake.addThread(ident: 0xa000)
        fake.memory.pointer(Self.freedThreadState(fake), at: fake.mainInterpreter + fake.offset(.interpThreadsHead))
        let reader = try fake.reader()
        do {
            let states = try reader.allThreadStates()
            Issue.record("read \(states.count) thread states from a damaged list")
        } catch let error as ThreadListKeptChanging {
            // 3.x: `prev` is the allocator's link; 2.7: `interp` is its key.
            #expect(error.attempts > 1)
            #expect(error.description.contains("try again"))
        }
    }

    // A thread being linked at the head: the old head already points back to it.
    @Test func aStateLinkedInFrontWhileReadIsReadAgain() throws {
        let fake = try FakeInterpreter(version: "3.12.1")
        let a = fake.addThread(ident: 0xa000)
        let newer = fake.memory.allocate(512)
        fake.memory.pointer(fake.mainInterpreter, at: newer + fake.offset(.tstateInterp))
        fake.memory.u64(0xc000, at: newer + fake.offset(.tstateThreadID))
        fake.memory.pointer(a, at: newer + fake.offset(.tstateNext))
        fake.memory.pointer(newer, at: a + fake.offset(.tstatePrev))
        let reader = try fake.reader()
        let headReads = Self.onHeadRead(fake) { read in read == 2 ? newer : nil }
        #expect(try reader.allThreadStates().map(\.ident) == [0xc000, 0xa000])
        #expect(headReads.count == 2)
    }
}
