import Testing
import PyTap

/// The `<GC>` frame and `--mode exception` facts on fake interpreters of every version:
/// where the collector's `collecting` flag is (2.7/3.6 a gcmodule.c static found by symbol,
/// 3.7/3.8 `_PyRuntime.gc`, 3.9+ the interpreter's), which thread gets the frame (the GIL
/// holder; 3.15+ the thread whose stack holds `gc.frame`), and which exception slots make a
/// thread "in an exception" (the handled one, down the `exc_info` stack, and the raised one).
@Suite struct InterpreterActivityTests {
    static let versions = LayoutTables.versions.map { "\($0.major).\($0.minor).0" }

    /// A fake with the collector's static (2.7/3.6) and None mapped.
    static func fake(_ version: String) throws -> (FakeInterpreter, RuntimeAddresses) {
        let fake = try FakeInterpreter(version: version)
        var addresses = fake.addresses
        addresses.noneObject = fake.memory.allocate(16)
        if fake.traits.gcState == .collectingSymbol { addresses.gcCollecting = fake.memory.allocate(8) }
        return (fake, addresses)
    }

    /// Sets the interpreter's `collecting` flag where this version keeps it.
    static func setCollecting(_ on: Bool, fake: FakeInterpreter, addresses: RuntimeAddresses, startFrame: UInt64 = 0) {
        let flag: UInt64
        switch fake.traits.gcState {
        case .collectingSymbol: flag = addresses.gcCollecting!
        case .runtime: flag = addresses.runtime! + fake.offset(.runtimeGCCollecting)
        case .interpreter: flag = fake.mainInterpreter + fake.offset(.interpGCCollecting)
        }
        fake.memory.i32(on ? 1 : 0, at: flag)
        if fake.has(.interpGCFrame) { fake.memory.pointer(startFrame, at: fake.mainInterpreter + fake.offset(.interpGCFrame)) }
    }

    @Test(arguments: versions)
    func collectingIsReadWhereTheVersionKeepsIt(version: String) throws {
        let (fake, addresses) = try InterpreterActivityTests.fake(version)
        let reader = try PythonReader(memory: fake.memory, layout: fake.layout, addresses: addresses)
        #expect(reader.gcActivity(interpreter: fake.mainInterpreter) == GCActivity(collecting: false))
        InterpreterActivityTests.setCollecting(true, fake: fake, addresses: addresses)
        #expect(reader.gcActivity(interpreter: fake.mainInterpreter)?.collecting == true)
        // 2.7/3.6 without gcmodule.c's symbol (a stripped binary): unknown, not "not collecting".
        if fake.traits.gcState == .collectingSymbol {
            var stripped = addresses
            stripped.gcCollecting = nil
            let blind = try PythonReader(memory: fake.memory, layout: fake.layout, addresses: stripped)
            #expect(blind.gcActivity(interpreter: fake.mainInterpreter) == nil)
        }
    }

    @Test(arguments: versions)
    func theGCFrameGoesToTheGILHolderOrTheThreadThatStartedTheCollection(version: String) throws {
        let (fake, addresses) = try InterpreterActivityTests.fake(version)
        let code = fake.code("work", file: "app.py", firstLine: 1, lines: [1, 2, 3])
        let collector = fake.addThread(ident: 0x7001, nativeID: 11)
        let other = fake.addThread(ident: 0x7002, nativeID: 12)
        let collectorFrames = fake.chain([(code, 2), (code, 4)])
        fake.setTopFrame(collectorFrames[0], of: collector)
        fake.setTopFrame(fake.chain([(code, 2)])[0], of: other)
        let reader = try PythonReader(memory: fake.memory, layout: fake.layout, addresses: addresses)

        func collecting() throws -> [UInt64] {
            var gil = GILHolders(reader: reader)
            var collectors = GCCollectors(reader: reader, observing: fake.interpreters)
            return try reader.allThreadStates().filter {
                collectors.isCollecting($0, frameAddresses: try reader.rawStack(of: $0).frameAddresses, gil: &gil)
            }.map(\.address)
        }

        fake.setGILHolder(collector)
        #expect(try collecting() == [])
        // The collection began in `collector`'s outer frame; a finalizer it runs released
        // the GIL to `other`.
        InterpreterActivityTests.setCollecting(true, fake: fake, addresses: addresses, startFrame: collectorFrames[1])
        #expect(try collecting() == [collector])
        fake.setGILHolder(other)
        #expect(try collecting() == (fake.has(.interpGCFrame) ? [collector] : [other]))
    }

    @Test(arguments: versions)
    func aThreadIsInAnExceptionWhileHandlingOrRaisingOne(version: String) throws {
        let (fake, addresses) = try InterpreterActivityTests.fake(version)
        let tstate = fake.addThread(ident: 0x7001, nativeID: 11)
        let reader = try PythonReader(memory: fake.memory, layout: fake.layout, addresses: addresses)
        func inException() throws -> Bool { reader.isInException(try reader.allThreadStates()[0]) }
        let exception = fake.memory.allocate(64)
        let none = addresses.noneObject!

        #expect(try !inException())
        // Raised, not yet caught.
        fake.memory.pointer(exception, at: tstate + fake.offset(.tstateCurrentException))
        #expect(try inException())
        fake.memory.pointer(0, at: tstate + fake.offset(.tstateCurrentException))

        switch fake.traits.handledException {
        case .threadState:
            fake.memory.pointer(none, at: tstate + fake.offset(.tstateExcType27))
            #expect(try !inException())
            fake.memory.pointer(exception, at: tstate + fake.offset(.tstateExcType27))
            #expect(try inException())
        case .errorStack:
            // The thread's own item, then a generator's pushed on it (no exception of its own).
            let own = fake.memory.allocate(64)
            let generator = fake.memory.allocate(64)
            fake.memory.pointer(own, at: generator + fake.offset(.errStackItemPrevious))
            fake.memory.pointer(generator, at: tstate + fake.offset(.tstateExcInfo))
            #expect(try !inException())
            fake.memory.pointer(none, at: own + fake.offset(.errStackItemException))
            #expect(try !inException())
            fake.memory.pointer(exception, at: own + fake.offset(.errStackItemException))
            #expect(try inException())
            #expect(try reader.handledException(of: reader.allThreadStates()[0]) == exception)
            // A looping stack ends at the depth cap, not in a hang.
            fake.memory.pointer(0, at: own + fake.offset(.errStackItemException))
            fake.memory.pointer(generator, at: own + fake.offset(.errStackItemPrevious))
            #expect(try !inException())
        }
    }

    /// A thread running plain functions points `exc_info` at `tstate->exc_state`, inside the
    /// copied state: the answer is the copy's (the instant its innermost frame is of), not
    /// whatever the thread does by the time the item would be read.
    @Test(arguments: versions)
    func theThreadsOwnExceptionItemIsTakenFromTheCopy(version: String) throws {
        let (fake, addresses) = try InterpreterActivityTests.fake(version)
        guard case .errorStack = fake.traits.handledException else { return }
        let tstate = fake.addThread(ident: 0x7001, nativeID: 11)
        let reader = try PythonReader(memory: fake.memory, layout: fake.layout, addresses: addresses)
        let exception = fake.memory.allocate(64)
        let itemSize = max(fake.offset(.errStackItemException), fake.offset(.errStackItemPrevious)) + 8
        let item = tstate + fake.offset(.tstateExcInfo) - itemSize
        fake.memory.pointer(0, at: item + fake.offset(.errStackItemPrevious))
        fake.memory.pointer(item, at: tstate + fake.offset(.tstateExcInfo))
        fake.memory.pointer(exception, at: item + fake.offset(.errStackItemException))

        let handling = try reader.allThreadStates()[0]
        fake.memory.pointer(0, at: item + fake.offset(.errStackItemException))
        #expect(reader.isInException(handling))
        #expect(try !reader.isInException(reader.reread(handling)))

        let plain = try reader.allThreadStates()[0]
        fake.memory.pointer(exception, at: item + fake.offset(.errStackItemException))
        #expect(!reader.isInException(plain))
        #expect(try reader.isInException(reader.reread(plain)))
    }
}
