import Testing
import PyTap

/// Stacks that change while they are read (issue 6 item 7): pointers followed from a copy
/// of the thread state that no longer mean what they did, on fake 3.11/3.12 interpreters
/// (`tstate->cframe->current_frame`) and every frame model.
@Suite struct ReaderTornStackTests {
    static let cframeVersions = ["3.11.7", "3.12.1"]
    static let versions = ["2.7.18", "3.8.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0", "3.14.0"]

    private func names(_ reader: PythonReader, _ stack: RawStack) throws -> [String] {
        try stack.frames.map { try reader.location(of: $0).name }
    }

    /// A thread running `running`, whose thread state points at a cframe on the C stack
    /// (a nested eval-loop call) rather than the root one inside the thread state.
    private func threadInANestedEvalCall(_ version: String) throws
        -> (fake: FakeInterpreter, thread: UInt64, cframeField: UInt64, cframe: UInt64, running: UInt64) {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let running = fake.code("running", file: "now.py", firstLine: 1, lines: [1, 2, 3])
        let cframeField = thread + fake.offset(.tstateCFrame)
        _ = fake.cStackFrameSlot()
        let cframe = fake.cStackFrameSlot()
        fake.memory.pointer(cframe, at: cframeField)
        fake.setTopFrame(fake.chain([(running, 2)])[0], of: thread)
        return (fake, thread, cframeField, cframe, running)
    }

    @Test(arguments: cframeVersions)
    func cframeOfAReturnedEvalCallIsNotFollowed(version: String) throws {
        // The thread state is copied while the thread is in a nested eval-loop call (its
        // cframe on the C stack). Before that cframe's `current_frame` is read, the call
        // returns to the root cframe; the C-stack slot now holds a pointer to a stale frame
        // that still looks valid. Following it silently reported the stale function.
        let (fake, thread, cframeField, cframe, _) = try threadInANestedEvalCall(version)
        let stale = fake.code("stale", file: "then.py", firstLine: 1, lines: [1, 2, 3])
        let staleFrame = fake.chain([(stale, 2)])[0]
        let currentFrameField = cframe + fake.offset(.cframeCurrentFrame)
        let liveFrame = fake.readPointer(currentFrameField)
        let root = thread + 400
        let reader = try fake.reader()
        var moved = false
        fake.memory.beforeRead = { memory, address, _ in
            guard !moved, address == currentFrameField else { return }
            moved = true
            memory.pointer(liveFrame, at: root + fake.offset(.cframeCurrentFrame))
            memory.pointer(root, at: cframeField)
            memory.pointer(staleFrame, at: currentFrameField)
        }
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(moved)
        #expect(stack.defect == nil)
        #expect(stack.retries == 1)
        #expect(try names(reader, stack) == ["running"])
    }

    @Test(arguments: cframeVersions)
    func aNestedEvalCallBegunMeanwhileLeavesTheCopiedCFrameValid(version: String) throws {
        // While the stack is read the thread calls into C and back into Python: a new
        // cframe deeper on the C stack. The copied one still holds the frame that made the
        // call, and the frames read are still on the stack: not a torn read.
        let (fake, _, cframeField, cframe, _) = try threadInANestedEvalCall(version)
        let deeper = cframe - UInt64(FakeInterpreter.frameSlot)
        let reader = try fake.reader()
        reader.maximumRetries = 0
        fake.memory.beforeRead = { memory, address, _ in
            if address == cframe + fake.offset(.cframeCurrentFrame) { memory.pointer(deeper, at: cframeField) }
        }
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == nil)
        #expect(try names(reader, stack) == ["running"])
    }

    /// A thread two frames deep in `inner` whose caller's code pointer is garbage (the
    /// caller's frame slot was reused).
    private func threadWithGarbageCaller(_ version: String) throws -> (fake: FakeInterpreter, thread: UInt64, inner: UInt64) {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let inner = fake.code("inner", file: "a.py", firstLine: 1, lines: [1, 2, 3])
        let frames = fake.chain([(inner, 2), (inner, 2)])
        fake.setTopFrame(frames[0], of: thread)
        switch fake.traits.frameModel {
        case .frameObjects: fake.memory.pointer(FakeInterpreter.unmapped, at: frames[1] + fake.offset(.frameCode))
        case .interpreterFrames: fake.memory.pointer(FakeInterpreter.unmapped, at: frames[1] + fake.offset(.iframeCode))
        }
        return (fake, thread, inner)
    }

    @Test(arguments: versions)
    func garbageMetOnAStackThatMovedOnIsTornNotAnError(version: String) throws {
        // By the time the walk meets the garbage, the thread has returned to another frame.
        let (fake, thread, inner) = try threadWithGarbageCaller(version)
        let elsewhere = fake.chain([(inner, 4)])[0]
        let reader = try fake.reader()
        reader.maximumRetries = 0
        fake.memory.beforeRead = { _, address, _ in
            if address == FakeInterpreter.unmapped { fake.setTopFrame(elsewhere, of: thread) }
        }
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == .changedWhileReading)
    }

    @Test(arguments: versions)
    func garbageOnAStackThatStaysPutIsStillAnError(version: String) throws {
        // The same garbage with the thread not moving: the target's own memory is bad (or
        // the layout is), which a torn read does not explain.
        let (fake, _, _) = try threadWithGarbageCaller(version)
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        if case .unreadable? = stack.defect {} else { Issue.record("expected an unreadable defect, got \(String(describing: stack.defect))") }
    }

    @Test(arguments: ["3.11.7", "3.12.1"])
    func framePushedAfterTheThreadStateWasCopiedIsReadFromTheChunkCopy(version: String) throws {
        // 3.11/3.12 read the innermost frame through the cframe after the thread state was
        // copied, so it can lie above the copied `datastack_top`. It is read with the chunk
        // (one read), not on its own a moment later when its slot may be reused.
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let outer = fake.code("outer", file: "a.py", firstLine: 1, lines: [1, 2, 3])
        let inner = fake.code("inner", file: "a.py", firstLine: 1, lines: [1, 2, 3])
        let slots = fake.dataStack(of: thread, slots: 4, used: 1)
        fake.frame(code: outer, instruction: 2, previous: 0, at: slots[0])
        fake.frame(code: inner, instruction: 2, previous: slots[0], at: slots[1])
        fake.setTopFrame(slots[1], of: thread)
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == nil)
        #expect(try names(reader, stack) == ["inner", "outer"])
        #expect(!fake.memory.readLog.contains { $0.address == slots[1] })
    }
}
