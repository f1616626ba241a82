import Testing
import PyTap

/// Which OS thread each thread state runs on (`PythonReader.placement`): pthread tid
/// calibration under thread churn, threads still starting, subinterpreters sharing an OS
/// thread, and targets in another PID namespace (`ThreadTable`).
@Suite struct ThreadPlacementTests {
    /// A glibc `struct pthread` for `tid` (the tid at x86_64's offset 0x2d0), as an ident.
    static func pthread(_ fake: FakeInterpreter, tid: Int32) -> UInt64 {
        let address = fake.memory.allocate(2048)
        fake.memory.i32(tid, at: address + 0x2d0)
        return address
    }

    @Test func pthreadTIDsCalibrateUnderChurnAndAStartingThreadGetsNoIDs() throws {
        let fake = try FakeInterpreter(version: "2.7.18")
        let code = fake.code("run", file: "app.py", firstLine: 1, lines: [1, 2])
        let mainIdent = ThreadPlacementTests.pthread(fake, tid: 100)
        let workerIdent = ThreadPlacementTests.pthread(fake, tid: 101)
        // A thread that has finished: the kernel cleared its tid; its state is not yet gone.
        let finishedIdent = ThreadPlacementTests.pthread(fake, tid: 0)
        let starting = fake.addThread(ident: mainIdent)  // made by main, not yet run by its thread
        let main = fake.addThread(ident: mainIdent)
        let worker = fake.addThread(ident: workerIdent)
        let finished = fake.addThread(ident: finishedIdent)
        fake.setTopFrame(fake.chain([(code, 2)])[0], of: main)
        fake.setTopFrame(fake.chain([(code, 2)])[0], of: worker)

        let reader = try fake.reader()
        let states = try reader.allThreadStates()
        let placement = reader.placement(of: states, in: ThreadTable(hostTIDs: [100, 101]))
        #expect(reader.tids.tidOffset == 0x2d0)
        #expect(placement.tids == [main: 100, worker: 101])
        #expect(placement.starting == [starting])
        #expect(placement.suspended.isEmpty)
        #expect(placement.tids[finished] == nil)
    }

    @Test func aThreadInASubinterpreterRunsThereAndWaitsInTheMainOne() throws {
        let fake = try FakeInterpreter(version: "3.12.1")
        let sub = fake.addInterpreter()
        fake.memory.i64(1, at: sub + fake.offset(.interpID))
        let code = fake.code("run", file: "app.py", firstLine: 1, lines: [1, 2])
        let caller = fake.addThread(ident: 0x7000, nativeID: 42)
        let inSub = fake.addThread(ident: 0x7000, nativeID: 42, to: sub)
        let idle = fake.addThread(ident: 0x8000, nativeID: 43, to: sub)
        fake.setTopFrame(fake.chain([(code, 2)])[0], of: caller)
        fake.setTopFrame(fake.chain([(code, 2)])[0], of: inSub)

        let reader = try fake.reader()
        #expect(reader.interpreterID(sub) == 1 && reader.interpreterID(fake.mainInterpreter) == 0)
        let placement = reader.placement(of: try reader.allThreadStates(), in: ThreadTable(hostTIDs: [42, 43]))
        #expect(placement.tids == [caller: 42, inSub: 42, idle: 43])
        #expect(placement.suspended == [caller])
        #expect(placement.starting.isEmpty)
    }

    @Test func namespacedTIDsAreTranslatedToHostTIDs() throws {
        let fake = try FakeInterpreter(version: "3.12.1")
        let main = fake.addThread(ident: 0x7000, nativeID: 1)
        let worker = fake.addThread(ident: 0x8000, nativeID: 7)
        let reader = try fake.reader()
        let table = ThreadTable(hostTIDs: [5000, 5006], hostByTarget: [1: 5000, 7: 5006])
        #expect(table.targetTIDs == [1, 7] && table.isTranslated)
        #expect(reader.placement(of: try reader.allThreadStates(), in: table).tids == [main: 5000, worker: 5006])
        // The same ids read as host ids match nothing.
        #expect(reader.placement(of: try reader.allThreadStates(), in: ThreadTable(hostTIDs: [5000, 5006])).tids.isEmpty)
    }

    @Test func parsesNSpidLines() {
        let status = "Name:\tpython3\nTgid:\t5000\nNgid:\t0\nPid:\t5006\nNSpid:\t5006\t7\nNSsid:\t1\n"
        #expect(ThreadTable.innermostID(statusText: status) == 7)
        #expect(ThreadTable.namespaceDepth(statusText: status) == 2)
        #expect(ThreadTable.namespaceDepth(statusText: "Pid:\t12\nNSpid:\t12\n") == 1)
        #expect(ThreadTable.innermostID(statusText: "Pid:\t12\n") == nil)
        #expect(ThreadTable.namespaceDepth(statusText: "Pid:\t12\n") == 1)
    }

    @Test func parsesTheImageFieldsOfStat() {
        let stat = "4242 (py (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 1234 1000 200 "
            + "18446744073709551615 94000000000000 94000000100000 140730000000000 0 0 0 0 16781312 2 0 0 0 17 1 0 0 0 0 0"
        let layout = ProcessImage.layout(statText: stat)
        #expect(layout?.startCode == 94_000_000_000_000 && layout?.startStack == 140_730_000_000_000)
        #expect(ProcessImage.layout(statText: "1 (x) S 1 2") == nil)
    }
}
