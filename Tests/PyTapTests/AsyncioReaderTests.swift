import Testing
@testable import PyTap

/// `AsyncioReader` on a fake 3.12 interpreter: tasks in `asyncio.tasks._scheduled_tasks`,
/// coroutines with embedded interpreter frames, and garbage that must give errors or
/// marked answers, never traps or endless loops.
struct AsyncioReaderTests {
    final class FakeAsyncio {
        let fake: FakeInterpreter
        let layout: AsyncioLayout
        let taskType: UInt64
        let coroutineType: UInt64
        let scheduled: UInt64
        var setTable: UInt64 = 0

        init(version: String = "3.12.1", slots: Int = 8) throws {
            fake = try FakeInterpreter(version: version)
            layout = try AsyncioLayout(version: try #require(PythonVersion(string: version)))
            taskType = fake.objects.type("_asyncio.Task")
            coroutineType = fake.objects.type("coroutine")
            scheduled = fake.objects.object(type: fake.objects.type("set"), size: 256)
            setTable = fake.memory.allocate(slots * 16)
            fake.memory.i64(Int64(slots - 1), at: scheduled + offset(.setMask))
            fake.memory.pointer(setTable, at: scheduled + offset(.setTable))
            let moduleDict = fake.objects.dict([(fake.objects.str("_scheduled_tasks"), scheduled)])
            let module = fake.objects.object(type: fake.objects.type("module"), size: 64)
            fake.memory.pointer(moduleDict, at: module + fake.offset(.moduleDict))
            let modules = fake.objects.dict([(fake.objects.str("asyncio.tasks"), module)])
            fake.memory.pointer(modules, at: fake.mainInterpreter + fake.offset(.interpModules))
        }

        func offset(_ field: AsyncioField) -> UInt64 { UInt64(layout[field]!) }

        /// A suspended coroutine running `code` at `instruction`, awaiting `awaited` (0: nothing).
        func coroutine(code: UInt64, instruction: Int, awaiting awaited: UInt64 = 0) -> UInt64 {
            let coroutine = fake.objects.object(type: coroutineType, size: 512)
            let frame = coroutine + offset(.generatorInterpreterFrame)
            fake.frame(code: code, instruction: instruction, previous: 0, owner: 1, at: frame)
            fake.memory.u8(UInt8(bitPattern: Int8(layout[.frameStateSuspended]!)), at: coroutine + offset(.generatorFrameState))
            fake.memory.i32(1, at: frame + offset(.interpreterFrameStackTop))
            fake.memory.pointer(awaited, at: frame + fake.offset(.iframeLocalsPlus))
            return coroutine
        }

        func setAwaited(of coroutine: UInt64, to awaited: UInt64) {
            fake.memory.pointer(awaited, at: coroutine + offset(.generatorInterpreterFrame) + fake.offset(.iframeLocalsPlus))
        }

        /// A pending task named `name` running `coroutine`, waiting on `waiter`, added to the set at `slot`.
        @discardableResult
        func task(_ name: String, coroutine: UInt64, waiter: UInt64 = 0, slot: Int) -> UInt64 {
            let task = fake.objects.object(type: taskType, size: 256)
            fake.memory.pointer(coroutine, at: task + offset(.taskCoroutine))
            fake.memory.pointer(fake.objects.str(name), at: task + offset(.taskName))
            fake.memory.pointer(waiter, at: task + offset(.taskFutureWaiter))
            fake.memory.pointer(task, at: setTable + UInt64(slot * 16))
            return task
        }

        func reader() throws -> AsyncioReader {
            AsyncioReader(reader: try fake.reader(), layout: layout)
        }
    }

    @Test("Tasks, their coroutine chains (outermost first) and who awaits whom")
    func tasksChainsAndAwaiters() throws {
        let fake = try FakeAsyncio()
        let outerCode = fake.fake.code("outer", file: "app.py", firstLine: 10, lines: [10, 11, 12])
        let innerCode = fake.fake.code("inner", file: "app.py", firstLine: 20, lines: [20, 21, 22])
        let inner = fake.coroutine(code: innerCode, instruction: 4)
        let worker = fake.task("worker", coroutine: fake.coroutine(code: outerCode, instruction: 2, awaiting: inner), slot: 3)
        let boss = fake.task("boss", coroutine: fake.coroutine(code: outerCode, instruction: 2), waiter: worker, slot: 5)
        let tasks = try fake.reader().tasks()
        #expect(tasks.map(\.name).sorted() == ["boss", "worker"])
        let read = try #require(tasks.first { $0.address == worker })
        #expect(read.state == .pending && read.defect == nil)
        #expect(read.coroutineFrames.map(\.code) == [outerCode, innerCode])
        #expect(read.awaitedBy == [boss])
        #expect(try #require(tasks.first { $0.address == boss }).awaitedBy.isEmpty)
    }

    @Test("A coroutine chain that loops is cut and marked, not followed forever")
    func awaitCycleIsMarked() throws {
        let fake = try FakeAsyncio()
        let code = fake.fake.code("loop", file: "app.py", firstLine: 1, lines: [1, 2])
        let first = fake.coroutine(code: code, instruction: 2)
        let second = fake.coroutine(code: code, instruction: 2, awaiting: first)
        fake.setAwaited(of: first, to: second)
        fake.task("looping", coroutine: first, slot: 0)
        let task = try #require(try fake.reader().tasks().first)
        #expect(task.coroutineFrames.count == 2)
        #expect(task.defect == .cycle(address: first))
    }

    @Test("Tasks that are not whole (no coroutine yet, name not a str) are left out")
    func halfBuiltTasksAreSkipped() throws {
        let fake = try FakeAsyncio()
        let code = fake.fake.code("work", file: "app.py", firstLine: 1, lines: [1, 2])
        fake.task("unborn", coroutine: 0, slot: 1)
        let garbage = fake.task("x", coroutine: fake.coroutine(code: code, instruction: 2), slot: 2)
        fake.fake.memory.pointer(fake.fake.objects.int(7_000_000_000_000), at: garbage + fake.offset(.taskName))
        fake.task("fine", coroutine: fake.coroutine(code: code, instruction: 2), slot: 4)
        let names = try fake.reader().tasks().map(\.name).sorted()
        // An int name is 3.12's lazily formatted Task-N.
        #expect(names == ["Task-7000000000000", "fine"])
    }

    @Test("A set whose mask is garbage is an error, not a huge read")
    func garbageSetMaskIsAnError() throws {
        let fake = try FakeAsyncio()
        fake.fake.memory.i64(Int64(1) << 40, at: fake.scheduled + fake.offset(.setMask))
        #expect(throws: ObjectReadError.self) { try fake.reader().tasks() }
    }

    @Test("Without asyncio.tasks in sys.modules the answer says asyncio is not imported")
    func noAsyncio() throws {
        let fake = try FakeAsyncio()
        fake.fake.memory.pointer(fake.fake.objects.dict([]), at: fake.fake.mainInterpreter + fake.fake.offset(.interpModules))
        #expect(throws: AsyncioError.asyncioNotImported) { try fake.reader().tasks() }
    }

    /// A function whose closure cells hold `captured` (a done callback of `asyncio.wait`).
    func closure(_ fake: FakeAsyncio, capturing captured: [UInt64]) -> UInt64 {
        let objects = fake.fake.objects
        let cells = captured.map { value -> UInt64 in
            let cell = objects.object(type: objects.type("cell"), size: 32)
            fake.fake.memory.pointer(value, at: cell + fake.fake.offset(.cellReference))
            return cell
        }
        let tuple = objects.object(type: objects.type("tuple"), size: 32 + 8 * cells.count)
        fake.fake.memory.i64(Int64(cells.count), at: tuple + fake.fake.offset(.varObjectSize))
        for (index, cell) in cells.enumerated() {
            fake.fake.memory.pointer(cell, at: tuple + fake.fake.offset(.tupleItems) + UInt64(8 * index))
        }
        let function = objects.object(type: objects.type("function"), size: 256)
        fake.fake.memory.pointer(tuple, at: function + fake.offset(.functionClosure))
        return function
    }

    @Test("A task awaits another through a future its done callback's closure holds (asyncio.wait, shield)")
    func awaitingThroughCallbackClosures() throws {
        let fake = try FakeAsyncio()
        let code = fake.fake.code("work", file: "app.py", firstLine: 1, lines: [1, 2])
        let waiter = fake.fake.objects.object(type: fake.fake.objects.type("_asyncio.Future"), size: 128)
        let other = fake.fake.objects.object(type: fake.fake.objects.type("_asyncio.Future"), size: 128)
        let boss = fake.task("boss", coroutine: fake.coroutine(code: code, instruction: 2), waiter: waiter, slot: 1)
        let waited = fake.task("waited", coroutine: fake.coroutine(code: code, instruction: 2), slot: 2)
        let unrelated = fake.task("unrelated", coroutine: fake.coroutine(code: code, instruction: 2), slot: 3)
        fake.fake.memory.pointer(closure(fake, capturing: [fake.fake.objects.int(1), waiter]), at: waited + fake.offset(.taskCallback0))
        fake.fake.memory.pointer(closure(fake, capturing: [other]), at: unrelated + fake.offset(.taskCallback0))
        let tasks = try fake.reader().tasks()
        #expect(try #require(tasks.first { $0.address == waited }).awaitedBy == [boss])
        #expect(try #require(tasks.first { $0.address == unrelated }).awaitedBy.isEmpty)
        #expect(try #require(tasks.first { $0.address == boss }).awaitedBy.isEmpty)
    }

    @Test("The tree marks a cycle of awaiting tasks and still shows every task")
    func treeMarksAwaitingCycles() {
        let python = PythonInfo(version: "3.12.1", executable: "/usr/bin/python3", library: nil)
        let frame = Frame(kind: .python, name: "f", file: "a.py", line: 3)
        let snapshot = AsyncSnapshot(pid: 1, commandLine: ["python3"], python: python, tasks: [
            AsyncTask(id: 1, name: "a", state: .pending, frames: [frame], defect: nil, awaitedBy: [2]),
            AsyncTask(id: 2, name: "b", state: .pending, frames: [frame], defect: nil, awaitedBy: [1]),
            AsyncTask(id: 3, name: "c", state: .pending, frames: [], defect: nil, awaitedBy: []),
        ])
        let text = AsyncTreeWriter.text(snapshot)
        #expect(text.contains("(T) a [pending] 0x1"))
        #expect(text.contains("(T) b [pending] 0x2"))
        #expect(text.contains("(T) c [pending] 0x3"))
        #expect(text.contains("(cycle)"))
        let json = AsyncTreeWriter.json(snapshot)
        #expect(json.contains("\"awaited_by\":[2]"))
    }

    @Test("_Py_AsyncioModuleDebugOffsets: short or implausible sections are errors")
    func debugOffsetsGarbage() {
        #expect(throws: AsyncioError.self) { try AsyncioDebugOffsets.parse([UInt8](repeating: 0, count: 40)) }
        var bytes = [UInt8](repeating: 0, count: 104)
        bytes[15] = 0xff  // member 1 (task_name) far beyond any structure
        #expect(throws: AsyncioError.self) { try AsyncioDebugOffsets.parse(bytes) }
    }
}

/// `AsyncStackTracker` on the same fake: the running task is found among
/// `_current_tasks` by its coroutine's frame on the thread's stack.
struct AsyncStackTrackerTests {
    typealias FakeAsyncio = AsyncioReaderTests.FakeAsyncio

    /// A running task `runner` (awaited by `boss`) whose coroutine frame is the second of
    /// the thread's frames; the loop's frame below it.
    func setUp(_ fake: FakeAsyncio, bossAwaitsRunner: Bool = true, runnerAwaitsBoss: Bool = false)
        throws -> (stack: RawStack, thread: ThreadState, codes: [String: UInt64]) {
        let codes = ["inner": fake.fake.code("inner", file: "app.py", firstLine: 1, lines: [1, 2]),
                     "work": fake.fake.code("work", file: "app.py", firstLine: 10, lines: [10, 11]),
                     "boss": fake.fake.code("boss", file: "app.py", firstLine: 20, lines: [20, 21]),
                     "loop": fake.fake.code("run_forever", file: "loop.py", firstLine: 30, lines: [30, 31])]
        let runnerCoroutine = fake.coroutine(code: codes["work"]!, instruction: 2)
        let runner = fake.task("runner", coroutine: runnerCoroutine, slot: 1)
        let boss = fake.task("boss", coroutine: fake.coroutine(code: codes["boss"]!, instruction: 2),
                             waiter: bossAwaitsRunner ? runner : 0, slot: 2)
        if runnerAwaitsBoss { fake.fake.memory.pointer(boss, at: runner + fake.offset(.taskFutureWaiter)) }
        // asyncio.tasks._current_tasks = {loop: runner}
        let loop = fake.fake.objects.object(type: fake.fake.objects.type("EventLoop"), size: 32)
        let current = fake.fake.objects.dict([(loop, runner)])
        let moduleDict = fake.fake.objects.dict([(fake.fake.objects.str("_scheduled_tasks"), fake.scheduled),
                                                 (fake.fake.objects.str("_current_tasks"), current)])
        let module = fake.fake.objects.object(type: fake.fake.objects.type("module"), size: 64)
        fake.fake.memory.pointer(moduleDict, at: module + fake.fake.offset(.moduleDict))
        let modules = fake.fake.objects.dict([(fake.fake.objects.str("asyncio.tasks"), module)])
        fake.fake.memory.pointer(modules, at: fake.fake.mainInterpreter + fake.fake.offset(.interpModules))
        let coroutineFrame = runnerCoroutine + fake.offset(.generatorInterpreterFrame)
        let stack = RawStack(frames: [RawFrame(code: codes["inner"]!, instructionOffset: 2), RawFrame(code: codes["work"]!, instructionOffset: 2),
                                      RawFrame(code: codes["loop"]!, instructionOffset: 2)],
                             defect: nil, retries: 0, frameAddresses: [0x1000, coroutineFrame, 0x2000])
        let thread = ThreadState(address: 0x3000, interpreter: fake.fake.mainInterpreter, ident: 1, nativeThreadID: 1,
                                 bytes: RemoteBytes(address: 0x3000, bytes: [UInt8](repeating: 0, count: 8)))
        return (stack, thread, codes)
    }

    @Test("The running task's frames, then the awaiting task's coroutine stack; the loop's frames are left out")
    func hopsThroughAwaiters() throws {
        let fake = try FakeAsyncio()
        let (stack, thread, codes) = try setUp(fake)
        let tracker = AsyncStackTracker(asyncio: try fake.reader())
        let hops = try #require(tracker.hops(of: stack, thread: thread, time: 1))
        #expect(hops.map(\.taskName) == ["runner", "boss"])
        #expect(hops[0].frames.map(\.code) == [codes["inner"]!, codes["work"]!])
        #expect(hops[1].frames.map(\.code) == [codes["boss"]!])
    }

    @Test("Tasks awaiting each other end the chain with a (cycle) hop")
    func awaitingCycle() throws {
        let fake = try FakeAsyncio()
        let (stack, thread, _) = try setUp(fake, runnerAwaitsBoss: true)
        let hops = try #require(AsyncStackTracker(asyncio: try fake.reader()).hops(of: stack, thread: thread, time: 1))
        #expect(hops.map(\.taskName) == ["runner", "boss", "(cycle)"])
    }

    @Test("Idle tasks: each task awaiting no task, on its loop's thread, continued through its awaiters")
    func idleTasksAreLeavesOnTheirLoopsThread() throws {
        let fake = try FakeAsyncio()
        let objects = fake.fake.objects
        let outer = fake.fake.code("outer", file: "app.py", firstLine: 1, lines: [1, 2])
        let inner = fake.fake.code("inner", file: "app.py", firstLine: 10, lines: [10, 11])
        let boss = fake.fake.code("boss", file: "app.py", firstLine: 20, lines: [20, 21])
        let running = objects.instance(className: "EventLoop", attributes: [("_thread_id", objects.int(77))])
        let stopped = objects.instance(className: "EventLoop", attributes: [])
        let worker = fake.task("worker", coroutine: fake.coroutine(code: outer, instruction: 2,
                                                                   awaiting: fake.coroutine(code: inner, instruction: 2)), slot: 1)
        let manager = fake.task("manager", coroutine: fake.coroutine(code: boss, instruction: 2), waiter: worker, slot: 2)
        let orphan = fake.task("orphan", coroutine: fake.coroutine(code: outer, instruction: 2), slot: 3)
        for (task, loop) in [(worker, running), (manager, running), (orphan, stopped)] {
            fake.fake.memory.pointer(loop, at: task + fake.offset(.taskLoop))
        }
        let idle = AsyncStackTracker(asyncio: try fake.reader()).idleTasks(time: 1)
        #expect(idle.map(\.task) == [worker])
        let only = try #require(idle.first)
        #expect(only.threadIdent == 77)
        #expect(only.hops.map(\.taskName) == ["worker", "manager"])
        #expect(only.hops[0].frames.map(\.code) == [inner, outer])
        #expect(only.hops[1].frames.map(\.code) == [boss])
    }

    @Test("A task found running in the round is not counted idle too")
    func runningTaskIsNotIdle() throws {
        let fake = try FakeAsyncio()
        let (stack, thread, _) = try setUp(fake, bossAwaitsRunner: false)
        let loop = fake.fake.objects.instance(className: "EventLoop", attributes: [("_thread_id", fake.fake.objects.int(1))])
        let tracker = AsyncStackTracker(asyncio: try fake.reader())
        let tasks = try fake.reader().tasks()
        for task in tasks { fake.fake.memory.pointer(loop, at: task.address + fake.offset(.taskLoop)) }
        #expect(Set(tracker.idleTasks(time: 1).flatMap { $0.hops.map(\.taskName) }) == ["runner", "boss"])
        _ = try #require(tracker.hops(of: stack, thread: thread, time: 2))
        #expect(tracker.idleTasks(time: 3).flatMap { $0.hops.map(\.taskName) } == ["boss"])
    }

    @Test("When _current_tasks names another task (the loop switched after the walk), the task whose coroutine frame is on the stack runs")
    func runningTaskFoundByItsFrame() throws {
        let fake = try FakeAsyncio()
        var (stack, thread, _) = try setUp(fake)
        let reader = try fake.reader()
        let boss = try #require(try reader.tasks().first { $0.name == "boss" })
        stack.frameAddresses[1] = try reader.frameAddress(ofCoroutine: try reader.coroutine(ofTask: boss.address))
        let hops = try #require(AsyncStackTracker(asyncio: reader).hops(of: stack, thread: thread, time: 1))
        #expect(hops.map(\.taskName) == ["boss"])
    }

    @Test("A thread whose stack holds no running task's coroutine keeps its plain stack")
    func noRunningTask() throws {
        let fake = try FakeAsyncio()
        var (stack, thread, _) = try setUp(fake)
        stack.frameAddresses = [0x1000, 0x1800, 0x2000]
        #expect(AsyncStackTracker(asyncio: try fake.reader()).hops(of: stack, thread: thread, time: 1) == nil)
    }
}
