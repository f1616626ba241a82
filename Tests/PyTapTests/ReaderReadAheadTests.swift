import Testing
import PyTap

/// A walk's batch reads, after the frames, the identities of the code objects the thread's
/// last walk met and the live innermost frame: a stack that did not change costs one
/// system call to walk and check (issue 11 item 4).
@Suite struct ReaderReadAheadTests {
    /// Versions whose live innermost frame is a thread-state field (3.11–3.12 reach it
    /// through the cframe, in reads of their own).
    static let versions = ["2.7.18", "3.8.18", "3.10.13", "3.13.0", "3.14.0"]

    private func fixture(_ version: String) throws -> (FakeInterpreter, PythonReader, ThreadState, [UInt64]) {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let outer = fake.code("outer", file: "app.py", firstLine: 1, lines: [2, 3])
        let inner = fake.code("inner", file: "app.py", firstLine: 10, lines: [11, 12])
        fake.setTopFrame(fake.chain([(inner, 2), (outer, 2)])[0], of: thread)
        let reader = try fake.reader()
        let state = try reader.allThreadStates()[0]
        return (fake, reader, state, [inner, outer])
    }

    private func names(_ reader: PythonReader, _ stack: RawStack) throws -> [String] {
        try stack.frames.map { try reader.location(of: $0).name }
    }

    /// The fixture's stack walked twice; the memory's log holds the second walk's reads.
    private func walkedAgain(_ version: String) throws -> FakeInterpreter {
        let (fake, reader, state, _) = try fixture(version)
        #expect(try names(reader, try reader.rawStack(of: state)) == ["inner", "outer"])
        fake.memory.resetLog()
        let again = try reader.rawStack(of: state)
        #expect(again.defect == nil)
        #expect(try names(reader, again) == ["inner", "outer"])
        return fake
    }

    @Test(arguments: versions)
    func anUnchangedStackIsWalkedAndCheckedInOneBatch(version: String) throws {
        let fake = try walkedAgain(version)
        #expect(fake.memory.batchLog.count == 1)
        // Every range read was in that batch: nothing read on its own.
        #expect(fake.memory.readLog.count == fake.memory.batchLog.reduce(0, +))
    }

    /// 3.11–3.12: the check's `current_frame` through the copied cframe and the live
    /// `tstate->cframe` after it come in the walk's batch too; only the innermost frame the
    /// walk starts from is read on its own (those same two reads).
    @Test(arguments: ["3.11.7", "3.12.1"])
    func anUnchangedStackBehindACFrameIsCheckedInTheWalksBatch(version: String) throws {
        let fake = try walkedAgain(version)
        #expect(fake.memory.batchLog.count == 1)
        #expect(fake.memory.readLog.count == fake.memory.batchLog.reduce(0, +) + 2)
    }

    @Test(arguments: versions + ["3.11.7", "3.12.1"])
    func aCodeObjectReplacedBetweenWalksIsCaughtByTheReadAhead(version: String) throws {
        let (fake, reader, state, codes) = try fixture(version)
        #expect(try names(reader, try reader.rawStack(of: state)) == ["inner", "outer"])
        // `inner` freed, and another code object of the same size made at its address.
        let other = fake.code("other", file: "app.py", firstLine: 10, lines: [11, 12])
        let size = Int(fake.layout[.codeCodeAdaptive].map { $0 + 256 } ?? 256)
        fake.memory.write(fake.memory.peek(other, count: size)!, at: codes[0])
        let again = try reader.rawStack(of: state)
        #expect(again.defect == nil)
        #expect(try names(reader, again) == ["other", "outer"])
        #expect(reader.codes.takeDropped() == [codes[0]])
    }
}
