import Testing
import PyTap

/// `Snapshotter` through the target seam, on a fake target: tids, names, GIL and idle come
/// from the target and the interpreter's memory; odd threads are reported, not dropped.
@Suite struct TargetSnapshotterTests {
    private func fixture(_ version: String = "3.12.1") throws -> (FakeTarget, UInt64, UInt64) {
        let (target, _, first, second) = try FakeTarget.twoThreads(version)
        return (target, first, second)
    }

    private func labels(_ thread: ThreadStack) -> [String] {
        thread.frames.map { "\($0.name):\($0.line ?? -1)" }
    }

    @Test func threadsCarryTheTargetsPidTidsGILAndIdleState() throws {
        let (target, _, _) = try fixture()
        target.fake.nameThreads([(0x1000, "MainThread"), (0x2000, "waiter")])
        let snapshot = try Snapshotter(target: try target.python()).snapshot()
        #expect(snapshot.pid == 4242)
        #expect(snapshot.commandLine == ["python-fake", "app.py"])
        #expect(snapshot.python.executable == "/usr/bin/python-fake")
        #expect(snapshot.threads.map(\.tid) == [11, 12])
        #expect(snapshot.threads.map(\.name) == ["MainThread", "waiter"])
        #expect(snapshot.threads.map(\.holdsGIL) == [true, false])
        #expect(snapshot.threads.map(\.idle) == [false, true])
        #expect(labels(snapshot.threads[0]) == ["run:12", "main:4"])
        #expect(labels(snapshot.threads[1]) == ["wait:21"])
        #expect(snapshot.threads.allSatisfy { $0.defect == nil })
    }

    @Test func aRenamedThreadShowsItsNewName() throws {
        let (target, _, _) = try fixture()
        let names = target.fake.nameThreads([(0x1000, "MainThread"), (0x2000, "Thread-1")])
        let snapshotter = try Snapshotter(target: try target.python())
        #expect(try snapshotter.snapshot().threads.map(\.name) == ["MainThread", "Thread-1"])
        // `thread.name = "downloader"`: the Thread's `_name` now points to another str.
        target.fake.memory.replacePointers(names[1], with: target.fake.objects.str("downloader"))
        #expect(try snapshotter.snapshot().threads.map(\.name) == ["MainThread", "downloader"])
    }

    @Test func aThreadWithoutPythonFramesIsListedEmpty() throws {
        let (target, _, _) = try fixture()
        target.fake.addThread(ident: 0x3000, nativeID: 13)
        target.threads[13] = .idle
        let snapshot = try Snapshotter(target: try target.python()).snapshot()
        #expect(snapshot.threads.map(\.tid) == [11, 12, 13])
        #expect(snapshot.threads[2].frames.isEmpty)
        #expect(snapshot.threads[2].defect == nil)
    }

    @Test func aThreadGoneFromTheOSIsNeitherIdleNorActiveAndKeepsItsStack() throws {
        let (target, _, _) = try fixture()
        target.threads[12] = nil  // exited between the thread list and its stat
        let snapshot = try Snapshotter(target: try target.python()).snapshot()
        #expect(snapshot.threads.map(\.idle) == [false, nil])
        #expect(labels(snapshot.threads[1]) == ["wait:21"])
    }

    @Test func aTornStackIsMarkedPartial() throws {
        let (target, _, second) = try fixture()
        let fake = target.fake
        let torn = fake.code("torn", file: "app.py", firstLine: 1, lines: [1])
        // An instruction outside its code object: a frame slot reused mid-copy, on every retry.
        fake.setTopFrame(fake.chain([(torn, 4096)])[0], of: second)
        let snapshot = try Snapshotter(target: try target.python()).snapshot()
        #expect(snapshot.threads[0].defect == nil)
        #expect(snapshot.threads[1].defect == .changedWhileReading)
    }

    @Test(arguments: ["3.11.7", "3.12.1", "3.14.0"])
    func aCallerOfAllZeroBytesMakesTheStackPartial(version: String) throws {
        // A core whose writer could not copy a page (gdb at a guard page) holds zeros there;
        // a frame of zeros is missing memory, not the bottom of the stack.
        let (target, first, _) = try fixture(version)
        let fake = target.fake
        let top = fake.readPointer(fake.topFrameField(of: first))
        fake.setPrevious(of: top, to: fake.memory.allocate(FakeInterpreter.frameSlot))
        let snapshot = try Snapshotter(target: try target.python()).snapshot()
        #expect(labels(snapshot.threads[0]) == ["run:12"])
        #expect(snapshot.threads[0].defect == .unreadable(address: fake.readPointer(top + fake.previousOffset), what: "interpreter frame (all zero)"))
        #expect(snapshot.threads[1].defect == nil)
    }

    @Test func python27TidsResolveThroughPthreadStructsOfLiveThreads() throws {
        let fake = try FakeInterpreter(version: "2.7.18")
        let run = fake.code("run", file: "app.py", firstLine: 1, lines: [1, 2])
        // pthread structs holding the tid at glibc's offset.
        var idents = [UInt64]()
        for tid in [Int32(21), 22] {
            let pthread = fake.memory.allocate(4096)
            fake.memory.i32(tid, at: pthread + 0x2d0)
            idents.append(pthread)
            fake.setTopFrame(fake.chain([(run, 2)])[0], of: fake.addThread(ident: pthread))
        }
        let target = FakeTarget(fake)
        target.threads = [21: .running, 22: .idle]
        let snapshot = try Snapshotter(target: try target.python()).snapshot()
        #expect(snapshot.threads.map(\.tid) == [21, 22])
        #expect(snapshot.threads.map(\.idle) == [false, true])
        // A thread the OS no longer lists has no tid.
        let snapshotter = try Snapshotter(target: try target.python())
        _ = try snapshotter.snapshot()
        target.threads[22] = nil
        let later = try snapshotter.snapshot()
        #expect(later.threads.map(\.tid) == [21, nil])
    }
}
