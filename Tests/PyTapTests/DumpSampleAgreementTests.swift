import Testing
import PyTap

/// `dump` and `sample` decide a thread's tid, name, GIL and idle state and its frames in one
/// place (`PythonReader.threadViews`, `GILHolders`): on the same target they agree.
@Suite struct DumpSampleAgreementTests {
    struct Seen: Equatable {
        var tid: Int32?
        var ident: UInt64
        var name: String?
        var frames: [Frame]
        /// (idle, holds the GIL) as the dump shows them; from the sampler's recorded state.
        var idle: Bool?
        var holdsGIL: Bool
    }

    /// One round of samples under `configure`d options: what each recorded thread showed.
    private func sampled(_ target: FakeTarget, _ configure: (inout SamplerOptions) -> Void) throws -> [Seen] {
        var options = SamplerOptions()
        options.rate = 2000
        configure(&options)
        let sampler = try Sampler(target: try target.python(), options: options)
        var seen = [Seen]()
        sampler.run(shouldStop: { $0.rounds >= 1 }, record: { thread, stack, _, state in
            // Sampled stacks are outermost first, dumps innermost first.
            let frames = sampler.stacks[stack].reversed().map { sampler.frames[$0] }
            let idle: Bool? = state.contains(.offCPU) ? true : state.contains(.onCPU) ? false : nil
            seen.append(Seen(tid: thread.tid, ident: thread.ident, name: thread.name, frames: frames,
                             idle: idle, holdsGIL: state.contains(.holdsGIL)))
        })
        return seen
    }

    @Test(arguments: ["3.11.7", "3.12.1", "3.14.0"])
    func dumpAndSampleAgreeOnThreadsGILIdleAndFrames(version: String) throws {
        let (target, code, _, _) = try FakeTarget.twoThreads(version)
        let fake = target.fake
        // A third thread, running, that the OS no longer lists: neither idle nor running.
        let third = fake.addThread(ident: 0x3000, nativeID: 13)
        fake.setTopFrame(fake.chain([(code.wait, 2), (code.main, 0)])[0], of: third)
        fake.nameThreads([(0x1000, "MainThread"), (0x2000, "waiter"), (0x3000, "gone")])

        let snapshot = try Snapshotter(target: try target.python()).snapshot()
        let dumped = snapshot.threads.map {
            Seen(tid: $0.tid, ident: $0.ident, name: $0.name, frames: $0.frames, idle: $0.idle, holdsGIL: $0.holdsGIL)
        }
        #expect(dumped.map(\.name) == ["MainThread", "waiter", "gone"])
        #expect(snapshot.threads.map(\.idle) == [false, true, nil])

        // Every thread, idle or not: the same threads, names, frames, idle and GIL states.
        let all = try sampled(target) { $0.includeIdle = true; $0.recordsThreadStates = true }
        #expect(all.sorted { $0.ident < $1.ident } == dumped.sorted { $0.ident < $1.ident })
        // Only running threads: those the dump shows as not idle.
        let running = try sampled(target) { _ in }
        #expect(running.map(\.ident) == snapshot.threads.filter { $0.idle == false }.map(\.ident))
        // Only the GIL holder: the one the dump says holds it, wherever the GIL goes.
        for holder in [0x1000, 0x2000] as [UInt64] {
            let state = try #require(try PythonReader(target: try target.python()).allThreadStates().first { $0.ident == holder })
            fake.setGILHolder(state.address)
            let holding = try Snapshotter(target: try target.python()).snapshot().threads.filter(\.holdsGIL).map(\.ident)
            #expect(holding == [holder])
            #expect(try sampled(target) { $0.includeIdle = true; $0.onlyGIL = true }.map(\.ident) == holding)
        }
    }
}
