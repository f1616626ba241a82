import Testing
import PyTap

/// `PythonReader` on fake interpreters: interpreters, thread states, stacks, locations and
/// the GIL holder for each frame model, then the ways a walk can go wrong.
@Suite struct ReaderPythonReaderTests {
    // MARK: Healthy interpreters

    @Test func python27WalksFrameObjectsFromInterpHead() throws {
        let fake = try FakeInterpreter(version: "2.7.18")
        let module = fake.code("<module>", file: "app.py", firstLine: 1, lines: [1, 5, 9])
        let run = fake.code("run", file: "app.py", firstLine: 20, lines: [21, 22, 23, 24])
        let inner = fake.code("inner", file: "lib/util.py", firstLine: 300, lines: [301, 302, 600])
        let main = fake.addThread(ident: 0x7f00_0000_1000)
        // f_lasti counts bytes in 2.7.
        let frames = fake.chain([(inner, 4), (run, 6), (module, 2)])
        fake.setTopFrame(frames[0], of: main)
        let worker = fake.addThread(ident: 0x7f00_0000_2000)
        fake.setTopFrame(fake.frame(code: run, instruction: -1, previous: 0), of: worker)
        fake.setGILHolder(worker)

        let reader = try fake.reader()
        #expect(try reader.interpreters() == [fake.mainInterpreter])
        let threads = try reader.threadStates(of: fake.mainInterpreter)
        #expect(threads.map(\.address) == [main, worker])
        #expect(threads.map(\.ident) == [0x7f00_0000_1000, 0x7f00_0000_2000])
        #expect(threads.allSatisfy { $0.nativeThreadID == nil && $0.interpreter == fake.mainInterpreter })

        let stack = try reader.rawStack(of: threads[0])
        #expect(stack.defect == nil)
        #expect(stack.retries == 0)
        #expect(stack.frames.map(\.code) == [inner, run, module])
        #expect(stack.frames.map(\.instructionOffset) == [4, 6, 2])
        #expect(try reader.expectedFrames(stack) == [
            ExpectedFrame("inner", file: "lib/util.py", line: 600),
            ExpectedFrame("run", file: "app.py", line: 24),
            ExpectedFrame("<module>", file: "app.py", line: 5),
        ])
        // A frame that has not run an instruction yet (f_lasti -1) is on its first line.
        let workerStack = try reader.rawStack(of: threads[1])
        #expect(workerStack.frames.map(\.instructionOffset) == [-1])
        #expect(try reader.expectedFrames(workerStack) == [ExpectedFrame("run", file: "app.py", line: 20)])
        #expect(reader.gilHolder(interpreter: fake.mainInterpreter) == worker)
        fake.setGILHolder(nil)
        #expect(reader.gilHolder(interpreter: fake.mainInterpreter) == nil)
    }

    @Test func python27FindsTheInterpreterThroughTheCurrentThreadWithoutInterpHead() throws {
        let fake = try FakeInterpreter(version: "2.7.18")
        let main = fake.addThread(ident: 1)
        fake.setGILHolder(main)
        let addresses = RuntimeAddresses(currentThreadState: fake.addresses.currentThreadState, codeType: fake.codeType)
        let reader = try PythonReader(memory: fake.memory, layout: fake.layout, addresses: addresses)
        #expect(try reader.interpreters() == [fake.mainInterpreter])
        // No thread holds the GIL: nothing to start from.
        fake.setGILHolder(nil)
        #expect(try reader.interpreters() == [])
    }

    @Test func python310WalksFrameObjectsOfEveryInterpreter() throws {
        let fake = try FakeInterpreter(version: "3.10.13")
        let sub = fake.addInterpreter()
        let module = fake.code("<module>", file: "/srv/main.py", firstLine: 1, lines: [1, 2, 3])
        let handle = fake.code("handle", file: "/srv/handler.py", firstLine: 40, lines: [40, 41, nil, 380])
        let t1 = fake.addThread(ident: 0x1000)
        let t2 = fake.addThread(ident: 0x2000)
        let t3 = fake.addThread(ident: 0x3000, to: sub)
        // f_lasti counts code units from 3.10: byte offset 6 is f_lasti 3.
        fake.setTopFrame(fake.chain([(handle, 6), (module, 4)])[0], of: t1)
        fake.setTopFrame(fake.chain([(handle, 4)])[0], of: t3)
        fake.setGILHolder(t1)

        let reader = try fake.reader()
        #expect(try reader.interpreters() == [fake.mainInterpreter, sub])
        let threads = try reader.allThreadStates()
        #expect(threads.map(\.address) == [t1, t2, t3])
        #expect(threads.map(\.interpreter) == [fake.mainInterpreter, fake.mainInterpreter, sub])

        let first = try reader.rawStack(of: threads[0])
        #expect(first.frames.map(\.instructionOffset) == [6, 4])
        // Each frame object is run by an eval call of its own.
        #expect(first.evalCallEnds == [1, 2])
        #expect(try reader.expectedFrames(first) == [
            ExpectedFrame("handle", file: "/srv/handler.py", line: 380),
            ExpectedFrame("<module>", file: "/srv/main.py", line: 3),
        ])
        // A thread with no Python frame has an empty, complete stack.
        let idle = try reader.rawStack(of: threads[1])
        #expect(idle.frames.isEmpty && idle.defect == nil)
        // The instruction at a "no line" entry (3.10: line delta -128) has no line.
        #expect(try reader.expectedFrames(try reader.rawStack(of: threads[2])) == [
            ExpectedFrame("handle", file: "/srv/handler.py", line: nil),
        ])
        #expect(reader.gilHolder(interpreter: fake.mainInterpreter) == t1)
        fake.setGILHolder(nil)
        #expect(reader.gilHolder(interpreter: fake.mainInterpreter) == nil)
    }

    @Test func python310RejectsAFrameThatIsNotAFrameObject() throws {
        let fake = try FakeInterpreter(version: "3.10.13")
        let code = fake.code("f", file: "f.py", firstLine: 1, lines: [1])
        let thread = fake.addThread(ident: 1)
        let frames = fake.chain([(code, 0), (code, 0)])
        // The caller's ob_type is not PyFrame_Type: a stale pointer to something else.
        fake.memory.pointer(fake.objects.type("list"), at: frames[1] + fake.offset(.objectType))
        fake.setTopFrame(frames[0], of: thread)
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.threadStates(of: fake.mainInterpreter)[0])
        #expect(stack.frames.count == 1)
        #expect(stack.defect == .unreadable(address: frames[1], what: "frame (not a frame object)"))
    }

    @Test func python312WalksTheDataStackSkipsTheShimAndReadsFramesOutsideTheChunk() throws {
        let fake = try FakeInterpreter(version: "3.12.1")
        let cStackOwner = UInt8(try #require(fake.layout[.firstNonPythonFrameOwner]))
        let module = fake.code("<module>", file: "app.py", firstLine: 1, lines: [1, 1, 7, 8], firstTraceable: 1)
        let numbers = fake.code("numbers", qualname: "Feeder.numbers", file: "app.py", firstLine: 30,
                                lines: [30, 31, 33, 35], firstTraceable: 1)
        let run = fake.code("run", qualname: "Worker.run", file: "/srv/app/worker.py", firstLine: 100,
                            lines: [100, 101, 450, 451], firstTraceable: 1)
        let compute = fake.code("compute", qualname: "Worker.run.<locals>.compute", file: "/srv/app/worker.py",
                                firstLine: 120, lines: [120, 121, 122, 129], firstTraceable: 1)
        let main = fake.addThread(ident: 0x7f00_1000, nativeID: 4242)
        let slots = fake.dataStack(of: main, slots: 4, used: 3)
        let moduleFrame = fake.frame(code: module, instruction: 4, previous: 0, at: slots[0])
        // A generator's frame lives in the generator object, outside the data stack.
        let generatorFrame = fake.frame(code: numbers, instruction: 6, previous: moduleFrame, owner: 1)
        // The entry frame of a C-level call: owned by the C stack, runs no Python code (its
        // code pointer is garbage on purpose: it must not be read).
        let shim = fake.frame(code: FakeInterpreter.unmapped, instruction: 0, previous: generatorFrame,
                              owner: cStackOwner, at: fake.cStackFrameSlot())
        let runFrame = fake.frame(code: run, instruction: 4, previous: shim, at: slots[1])
        let computeFrame = fake.frame(code: compute, instruction: 6, previous: runFrame, at: slots[2])
        fake.setTopFrame(computeFrame, of: main)
        let worker = fake.addThread(ident: 0x7f00_2000, nativeID: 4243)
        fake.setTopFrame(fake.frame(code: run, instruction: 2, previous: 0), of: worker)
        fake.setGILHolder(worker)

        let reader = try fake.reader()
        let threads = try reader.allThreadStates()
        #expect(threads.map(\.nativeThreadID) == [4242, 4243])
        #expect(threads.map(\.ident) == [0x7f00_1000, 0x7f00_2000])
        fake.memory.resetLog()
        let stack = try reader.rawStack(of: threads[0])
        #expect(stack.defect == nil && stack.retries == 0)
        #expect(stack.frames.map(\.code) == [compute, run, numbers, module])
        #expect(stack.frames.map(\.instructionOffset) == [6, 4, 6, 4])
        // The shim ends the eval call running compute and run; the rest have no shim under them here.
        #expect(stack.evalCallEnds == [2])
        #expect(try reader.expectedFrames(stack) == [
            ExpectedFrame("compute", qualname: "Worker.run.<locals>.compute", file: "/srv/app/worker.py", line: 129),
            ExpectedFrame("run", qualname: "Worker.run", file: "/srv/app/worker.py", line: 450),
            ExpectedFrame("numbers", qualname: "Feeder.numbers", file: "app.py", line: 35),
            ExpectedFrame("<module>", file: "app.py", line: 7),
        ])
        // Frames below datastack_top come from one copy of the chunk; the others are read.
        let readStarts = Set(fake.memory.readLog.map(\.address))
        #expect(!readStarts.contains(computeFrame) && !readStarts.contains(runFrame) && !readStarts.contains(moduleFrame))
        #expect(readStarts.contains(generatorFrame) && readStarts.contains(shim))
        #expect(!readStarts.contains(FakeInterpreter.unmapped))

        #expect(try reader.expectedFrames(try reader.rawStack(of: threads[1])) == [
            ExpectedFrame("run", qualname: "Worker.run", file: "/srv/app/worker.py", line: 101),
        ])
        #expect(reader.gilHolder(interpreter: fake.mainInterpreter) == worker)
        fake.setGILHolder(nil)
        #expect(reader.gilHolder(interpreter: fake.mainInterpreter) == nil)
    }

    @Test(arguments: ["3.11.7", "3.12.1", "3.13.0", "3.14.0"])
    func instructionOutsideItsCodeObjectIsATornFrame(version: String) throws {
        // A frame slot reused during the copy: the new code object with the old frame's
        // instruction pointer. The walk must not report a line of the wrong code.
        let fake = try FakeInterpreter(version: version)
        let main = fake.addThread(ident: 1, nativeID: 10)
        let run = fake.code("run", file: "app.py", firstLine: 1, lines: [1, 2, 3])
        fake.setTopFrame(fake.chain([(run, 4096)])[0], of: main)
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == .changedWhileReading)
        #expect(stack.retries == reader.maximumRetries)
        #expect(stack.frames.isEmpty)
    }

    @Test func python312SkipsAFrameStillInItsPrologueUnlessAGeneratorOwnsIt() throws {
        let fake = try FakeInterpreter(version: "3.12.1")
        // Instructions before _co_firsttraceable (2) are the prologue (COPY_FREE_VARS, …).
        let code = fake.code("f", file: "f.py", firstLine: 1, lines: [1, 1, 2, 3], firstTraceable: 2)
        let thread = fake.addThread(ident: 1)
        let bottom = fake.frame(code: code, instruction: 4, previous: 0)
        let generator = fake.frame(code: code, instruction: 2, previous: bottom, owner: 1)
        let incomplete = fake.frame(code: code, instruction: 2, previous: generator)
        fake.setTopFrame(incomplete, of: thread)
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.threadStates(of: fake.mainInterpreter)[0])
        #expect(stack.defect == nil)
        #expect(stack.frames.map(\.instructionOffset) == [2, 4])
    }

    @Test func python311EvalCallsEndAtEntryFramesEvenInvisibleOnes() throws {
        // Innermost first: inner (entry, still in its prologue: not shown), callback (entry),
        // work, <module> (entry). Three eval calls: [], [callback], [work, <module>].
        let fake = try FakeInterpreter(version: "3.11.7")
        let code = fake.code("f", file: "f.py", firstLine: 1, lines: [1, 1, 2, 3], firstTraceable: 2)
        let thread = fake.addThread(ident: 1)
        let module = fake.frame(code: code, instruction: 4, previous: 0, isEntry: true)
        let work = fake.frame(code: code, instruction: 6, previous: module)
        let callback = fake.frame(code: code, instruction: 4, previous: work, isEntry: true)
        let inner = fake.frame(code: code, instruction: 0, previous: callback, isEntry: true)
        fake.setTopFrame(inner, of: thread)
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.threadStates(of: fake.mainInterpreter)[0])
        #expect(stack.defect == nil)
        #expect(stack.frames.map(\.instructionOffset) == [4, 6, 4])
        #expect(stack.evalCallEnds == [0, 1, 3])
    }

    @Test func python314MasksTheTaggedExecutableAndSkipsFramesThatRunNoCode() throws {
        let fake = try FakeInterpreter(version: "3.14.0")
        let interpreterOwner = UInt8(try #require(fake.layout[.firstNonPythonFrameOwner]))
        let main = fake.code("main", file: "/app/main.py", firstLine: 10, lines: [10, 11, 12], firstTraceable: 1)
        let tick = fake.code("tick", qualname: "Clock.tick", file: "/app/clock.py", firstLine: 5,
                             lines: [5, 6, 9], firstTraceable: 1)
        let thread = fake.addThread(ident: 0xabc000, nativeID: 99)
        let slots = fake.dataStack(of: thread, slots: 4, used: 4)
        let notCode = fake.objects.str("not a code object")
        // f_executable is a _PyStackRef: the low bit tags a deferred reference.
        let mainFrame = fake.frame(code: main, instruction: 4, previous: 0, at: slots[0], executable: main | 1)
        let shim = fake.frame(code: notCode, instruction: 0, previous: mainFrame, owner: interpreterOwner, at: slots[1])
        let other = fake.frame(code: notCode, instruction: 0, previous: shim, at: slots[2])
        let tickFrame = fake.frame(code: tick, instruction: 4, previous: other, at: slots[3], executable: tick | 1)
        fake.setTopFrame(tickFrame, of: thread)
        fake.setGILHolder(thread)

        let reader = try fake.reader()
        let threads = try reader.threadStates(of: fake.mainInterpreter)
        #expect(threads.map(\.nativeThreadID) == [99])
        let stack = try reader.rawStack(of: threads[0])
        #expect(stack.defect == nil)
        #expect(stack.frames.map(\.code) == [tick, main])
        #expect(try reader.expectedFrames(stack) == [
            ExpectedFrame("tick", qualname: "Clock.tick", file: "/app/clock.py", line: 9),
            ExpectedFrame("main", file: "/app/main.py", line: 12),
        ])
        #expect(reader.gilHolder(interpreter: fake.mainInterpreter) == thread)
    }

    @Test(arguments: ["2.7.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"])
    func threadNamesComeFromThreadingActive(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let o = fake.objects
        // 2.7's Thread keeps its name in the mangled `__name`.
        let nameAttribute = o.traits.strings == .python2 ? "_Thread__name" : "_name"
        let mainThread = o.instance(className: "_MainThread", attributes: [("_target", o.int(0)), (nameAttribute, o.str("MainThread"))])
        let worker = o.instance(className: "Thread", attributes: [(nameAttribute, o.str("Worker-7")), ("_daemonic", o.int(1))])
        let nameless = o.instance(className: "Thread", attributes: [("_target", o.int(0))])
        let active = o.dict([(o.int(0x7f00_1000), mainThread), (o.int(0x7f00_2000), worker), (o.int(0x7f00_3000), nameless)])
        let module = o.object(type: o.type("module"), size: 64)
        o.memory.pointer(o.dict([(o.str("Thread"), o.int(0)), (o.str("_active"), active)]), at: module + o.offset(.moduleDict))
        let modules = o.dict([(o.str("sys"), o.int(0)), (o.str("threading"), module)])
        o.memory.pointer(modules, at: fake.mainInterpreter + fake.offset(.interpModules))

        let reader = try fake.reader()
        let expected: [UInt64: String] = [0x7f00_1000: "MainThread", 0x7f00_2000: "Worker-7"]
        #expect(reader.threadNames(interpreter: fake.mainInterpreter) == expected)
        // Later calls start from the remembered `_active` dict, not from sys.modules.
        fake.memory.resetLog()
        #expect(reader.threadNames(interpreter: fake.mainInterpreter) == expected)
        #expect(!fake.memory.readLog.contains { $0.address == modules })
        // No `threading` module: no names, no error.
        let other = fake.addInterpreter()
        #expect(reader.threadNames(interpreter: other).isEmpty)
    }

    // MARK: Defects

    static let versions = ["2.7.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0", "3.14.0"]

    /// One thread whose stack is `depth` frames of `step` (line 12), innermost first.
    private func fixture(_ version: String, depth: Int) throws -> (FakeInterpreter, UInt64, [UInt64]) {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let step = fake.code("step", file: "loop.py", firstLine: 10, lines: [10, 11, 12])
        let frames = fake.chain(Array(repeating: (step, 4), count: depth))
        fake.setTopFrame(frames.first ?? 0, of: thread)
        return (fake, thread, frames)
    }

    private func frameWhat(_ fake: FakeInterpreter) -> String {
        if case .frameObjects = fake.traits.frameModel { return "frame" }
        return "interpreter frame"
    }

    @Test(arguments: versions)
    func cyclicFrameChainIsReportedInBoundedTime(version: String) throws {
        // (frames, the one whose caller is made an earlier frame, that earlier frame):
        // a full loop, a loop after a tail of four frames, a frame that calls itself.
        for (depth, last, back) in [(3, 2, 0), (10, 9, 4), (2, 1, 1)] {
            let (fake, _, frames) = try fixture(version, depth: depth)
            fake.setPrevious(of: frames[last], to: frames[back])
            let reader = try fake.reader()
            let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
            // Which frame of the loop is named is up to the detector; each frame appears once.
            guard case .cycle(let address) = stack.defect else {
                Issue.record("\(depth) frames: expected a cycle, got \(String(describing: stack.defect))")
                continue
            }
            #expect(frames[back...last].contains(address), "\(depth) frames")
            #expect(stack.frames.count == depth, "\(depth) frames")
            #expect(stack.retries <= reader.maximumRetries)
            #expect(fake.memory.readCount < 400)
        }
    }

    @Test(arguments: versions)
    func chainDeeperThanTheLimitKeepsItsInnermostFramesAndCountsTheRest(version: String) throws {
        let (fake, _, _) = try fixture(version, depth: 40)
        let reader = try fake.reader()
        reader.maximumDepth = 16
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == nil)
        #expect(stack.cut == CutFrames(count: 24, moreThanCounted: false))
        #expect(stack.cut?.marker.name == "(24 outer frames cut)")
        #expect(stack.frames.count == 16)
        #expect(stack.retries == 0)
        #expect(try reader.expectedFrames(stack).allSatisfy { $0 == ExpectedFrame("step", file: "loop.py", line: 12) })
    }

    @Test(arguments: versions)
    func framePointerIntoUnmappedMemoryIsUnreadable(version: String) throws {
        let (fake, thread, frames) = try fixture(version, depth: 2)
        fake.setPrevious(of: frames[1], to: FakeInterpreter.unmapped)
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == .unreadable(address: FakeInterpreter.unmapped, what: frameWhat(fake)))
        #expect(stack.frames.count == 2)
        // The same when the thread's top frame itself is garbage.
        fake.setTopFrame(FakeInterpreter.unmapped + 0x40, of: thread)
        let top = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(top.frames.isEmpty)
        #expect(top.defect == .unreadable(address: FakeInterpreter.unmapped + 0x40, what: frameWhat(fake)))
    }

    @Test(arguments: versions)
    func cyclicThreadAndInterpreterListsAreFollowedOnce(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let t1 = fake.addThread(ident: 1)
        let t2 = fake.addThread(ident: 2)
        fake.memory.pointer(t1, at: t2 + fake.offset(.tstateNext))
        fake.memory.pointer(fake.mainInterpreter, at: fake.mainInterpreter + fake.offset(.interpNext))
        let reader = try fake.reader()
        #expect(try reader.interpreters() == [fake.mainInterpreter])
        #expect(try reader.threadStates(of: fake.mainInterpreter).map(\.address) == [t1, t2])
        #expect(try reader.allThreadStates().count == 2)
        #expect(fake.memory.readCount < 50)
    }

    @Test(arguments: versions)
    func codeObjectWithAnAbsurdNameLengthThrowsInsteadOfTrapping(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 1)
        let good = fake.code("good", file: "ok.py", firstLine: 1, lines: [1, 2, 3])
        let name = fake.objects.str("bad")
        let lengthField = fake.traits.strings == .pep393 ? fake.offset(.unicodeLength) : fake.offset(.varObjectSize)
        fake.memory.i64(1 << 40, at: name + lengthField)
        let bad = fake.objects.code(name: "", filename: "bad.py", firstLine: 1,
                                    lineTable: FakeLineTable.encode(fake.traits.lineTable, firstLine: 1, lines: [1]),
                                    codeType: fake.codeType, nameObject: name)
        fake.setTopFrame(fake.chain([(good, 2), (bad, 0), (good, 4)])[0], of: thread)
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        let what = fake.traits.strings == .pep393 ? "str length" : "bytes length"
        // Every frame model reads each code object while walking (inside the consistency
        // check): the bad one ends the walk.
        #expect(stack.defect == .unreadable(address: bad, what: "code object"))
        #expect(stack.frames.map(\.code) == [good])
        #expect(throws: ObjectReadError.implausible(what: what, value: 1 << 40)) {
            try reader.location(of: RawFrame(code: bad, instructionOffset: 0))
        }
        #expect(try reader.location(of: stack.frames[0]).name == "good")
        // Nothing close to 2^40 bytes was asked for.
        #expect(fake.memory.readLog.map(\.count).max() ?? 0 <= 4096)
    }

    /// Chain A (a1 → a2) and chain B (b1 → b2) of one thread, disjoint; A is current.
    private func twoChains(_ version: String) throws -> (FakeInterpreter, UInt64, a: [UInt64], b: [UInt64]) {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 1, nativeID: 5)
        let alpha = fake.code("alpha", file: "a.py", firstLine: 1, lines: [1, 2, 3])
        let beta = fake.code("beta", file: "b.py", firstLine: 50, lines: [50, 51, 52])
        let a = fake.chain([(alpha, 2), (alpha, 4)])
        let b = fake.chain([(beta, 2), (beta, 4)])
        fake.setTopFrame(a[0], of: thread)
        return (fake, thread, a, b)
    }

    @Test(arguments: versions)
    func stackThatChangesOnEveryAttemptIsReportedAfterTheRetries(version: String) throws {
        let (fake, thread, a, b) = try twoChains(version)
        let field = fake.topFrameField(of: thread)
        // Whenever the walk reaches the bottom of one chain, the thread switches to the other.
        fake.memory.beforeRead = { memory, address, _ in
            if address == a[1] { memory.pointer(b[0], at: field) }
            if address == b[1] { memory.pointer(a[0], at: field) }
        }
        let reader = try fake.reader()
        let threads = try reader.allThreadStates()
        let stack = try reader.rawStack(of: threads[0])
        #expect(stack.defect == .changedWhileReading)
        #expect(stack.retries == reader.maximumRetries)

        reader.maximumRetries = 5
        let longer = try reader.rawStack(of: threads[0])
        #expect(longer.defect == .changedWhileReading)
        #expect(longer.retries == 5)
    }

    @Test(arguments: versions)
    func stackThatChangesOnceIsWalkedAgain(version: String) throws {
        let (fake, thread, a, b) = try twoChains(version)
        let field = fake.topFrameField(of: thread)
        var switched = false
        fake.memory.beforeRead = { memory, address, _ in
            if address == a[1] && !switched {
                switched = true
                memory.pointer(b[0], at: field)
            }
        }
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == nil)
        #expect(stack.retries == 1)
        #expect(try reader.expectedFrames(stack) == [
            ExpectedFrame("beta", file: "b.py", line: 51), ExpectedFrame("beta", file: "b.py", line: 52),
        ])
    }

    @Test(arguments: versions)
    func frameCalledDuringTheWalkIsNotATear(version: String) throws {
        let (fake, thread, a, _) = try twoChains(version)
        let field = fake.topFrameField(of: thread)
        let callee = fake.code("callee", file: "c.py", firstLine: 1, lines: [1])
        let pushed = fake.frame(code: callee, instruction: 0, previous: a[0])
        // The thread calls a function (a new frame above a1) while a2 is being read.
        fake.memory.beforeRead = { memory, address, _ in
            if address == a[1] { memory.pointer(pushed, at: field) }
        }
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == nil)
        #expect(stack.retries == 0)
        #expect(try reader.expectedFrames(stack).map(\.name) == ["alpha", "alpha"])
    }

    /// Two threads with a few frames; returns the fake and the decoded stacks.
    private func vanishingFixture(_ version: String) throws -> (FakeInterpreter, [[ExpectedFrame]]) {
        let fake = try FakeInterpreter(version: version)
        let outer = fake.code("outer", file: "o.py", firstLine: 1, lines: [1, 2, 3])
        let inner = fake.code("inner", qualname: "K.inner", file: "i.py", firstLine: 10, lines: [10, 11, 12])
        let t1 = fake.addThread(ident: 1, nativeID: 11)
        let t2 = fake.addThread(ident: 2, nativeID: 12)
        if fake.has(.tstateDatastackChunk) {
            let slots = fake.dataStack(of: t1, slots: 2, used: 2)
            let bottom = fake.frame(code: outer, instruction: 2, previous: 0, at: slots[0])
            fake.setTopFrame(fake.frame(code: inner, instruction: 4, previous: bottom, at: slots[1]), of: t1)
        } else {
            fake.setTopFrame(fake.chain([(inner, 4), (outer, 2)])[0], of: t1)
        }
        fake.setTopFrame(fake.chain([(outer, 4)])[0], of: t2)
        let qualname = fake.has(.codeQualname) ? "K.inner" : "inner"
        return (fake, [
            [ExpectedFrame("inner", qualname: qualname, file: "i.py", line: 12), ExpectedFrame("outer", file: "o.py", line: 2)],
            [ExpectedFrame("outer", file: "o.py", line: 3)],
        ])
    }

    @Test(arguments: versions)
    func processThatVanishesMidWalkSurfacesAsProcessGone(version: String) throws {
        let (fake, expected) = try vanishingFixture(version)
        /// Where a sampling pass stopped.
        enum Outcome: Equatable { case complete, threadsGone, stackGone, locationGone, partial }
        func sample(_ reader: PythonReader) -> Outcome {
            let threads: [ThreadState]
            switch Result(catching: { try reader.allThreadStates() }) {
            case .success(let found): threads = found
            case .failure(let error): return gone(error, .threadsGone)
            }
            var stacks = [[ExpectedFrame]]()
            var partial = false
            for thread in threads {
                let stack: RawStack
                do { stack = try reader.rawStack(of: thread) } catch { return gone(error, .stackGone) }
                if let defect = stack.defect {
                    // A torn walk comes back as a defect only when no retry is left.
                    #expect(reader.maximumRetries == 0, "\(defect) with retries left")
                    guard case .unreadable = defect else {
                        Issue.record("unexpected defect \(defect)")
                        return .partial
                    }
                    partial = true
                }
                do { stacks.append(try reader.expectedFrames(stack)) } catch { return gone(error, .locationGone) }
                _ = reader.gilHolder(interpreter: thread.interpreter)
            }
            if partial { return .partial }
            // A pass that went through read everything: nothing partial slips through.
            #expect(stacks == expected)
            return .complete
        }
        func gone(_ error: any Error, _ outcome: Outcome) -> Outcome {
            #expect(memoryReadError(in: error) == .processGone, "\(error)")
            return outcome
        }

        #expect(sample(try fake.reader()) == .complete)
        let total = fake.memory.readCount
        for retries in [3, 0] {
            var outcomes = [Outcome]()
            for limit in 0...total {
                fake.memory.resetLog()
                fake.memory.failAfterReads = limit
                let reader = try fake.reader()
                reader.maximumRetries = retries
                outcomes.append(sample(reader))
            }
            #expect(outcomes.last == .complete)
            #expect(outcomes.contains(.threadsGone) && outcomes.contains(.stackGone))
            // Code objects are read while walking, so decoding reads nothing more; a walk
            // cut short checks the live stack (to tell a torn read from garbage), and that
            // read throws: the vanished process surfaces as gone, never as a partial stack.
            #expect(!outcomes.contains(.locationGone))
            #expect(!outcomes.contains(.partial), "retries \(retries)")
        }
        fake.memory.failAfterReads = nil
        #expect(sample(try fake.reader()) == .complete)
    }
}
