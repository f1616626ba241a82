import Testing
import PyTap

/// `Sampler` through the target seam, on a fake target: which threads are sampled (idle,
/// GIL filters), threads that appear, vanish or get their name late, torn stacks and
/// threads without Python frames.
@Suite struct TargetSamplerTests {
    struct Sample: Equatable {
        var tid: Int32?
        var name: String?
        var stack: [String]
    }

    /// Runs `rounds` rounds; `between(round)` may change the fake before each round.
    private func record(_ target: FakeTarget, options: SamplerOptions = SamplerOptions(), rounds: Int,
                        between: (Int) -> Void = { _ in }) throws -> ([[Sample]], SamplerStatistics) {
        var options = options
        options.rate = 2000
        let sampler = try Sampler(target: try target.python(), options: options)
        var byRound = [[Sample]]()
        sampler.run(shouldStop: { statistics in
            if statistics.rounds >= rounds { return true }
            between(statistics.rounds)
            byRound.append([])
            return false
        }, record: { thread, stack, _, _ in
            let names = sampler.stacks[stack].map { sampler.frames[$0].name }
            byRound[byRound.count - 1].append(Sample(tid: thread.tid, name: thread.name, stack: names))
        })
        return (byRound, sampler.statistics)
    }

    private func fixture() throws -> (FakeTarget, code: (main: UInt64, run: UInt64, wait: UInt64), UInt64, UInt64) {
        try FakeTarget.twoThreads()
    }

    @Test func onlyRunningThreadsAreSampledUnlessIdleIsAsked() throws {
        let (target, _, _, _) = try fixture()
        let (rounds, statistics) = try record(target, rounds: 3)
        #expect(rounds == Array(repeating: [Sample(tid: 11, name: nil, stack: ["main", "run"])], count: 3))
        #expect(statistics.samples == 3)

        var options = SamplerOptions()
        options.includeIdle = true
        let (all, _) = try record(target, options: options, rounds: 2)
        #expect(all.allSatisfy { $0.map(\.tid) == [11, 12] })
        #expect(all[0][1].stack == ["wait"])
    }

    @Test func theGILHolderIsNotAskedForItsRunState() throws {
        let (target, _, _, second) = try fixture()
        let (rounds, _) = try record(target, rounds: 5) { round in
            if round == 3 { target.fake.setGILHolder(second) }
        }
        // The first round asks both threads (it learns where the GIL is), the next ones only
        // the thread without the GIL. The new holder is taken for running whatever its run
        // state says (the documented trade-off: CPython releases the GIL to block).
        #expect(target.runStateReads == 2 + 1 + 1 + 1 + 1)
        #expect(rounds.map { $0.map(\.tid) } == [[11], [11], [11], [11, 12], [11, 12]])
    }

    @Test func gilFilterKeepsOnlyTheHolder() throws {
        let (target, _, _, second) = try fixture()
        var options = SamplerOptions()
        options.includeIdle = true
        options.onlyGIL = true
        let (rounds, _) = try record(target, options: options, rounds: 4) { round in
            if round == 2 { target.fake.setGILHolder(second) }
        }
        #expect(rounds.map { $0.map(\.tid) } == [[11], [11], [12], [12]])
    }

    @Test func threadsAppearVanishAndGetTheirNamesLate() throws {
        let (target, code, first, _) = try fixture()
        let fake = target.fake
        var options = SamplerOptions()
        options.includeIdle = true
        var third: UInt64 = 0
        let (rounds, statistics) = try record(target, options: options, rounds: 6) { round in
            switch round {
            case 1:
                // A new thread starts (running, not named yet).
                third = fake.addThread(ident: 0x3000, nativeID: 13)
                fake.setTopFrame(fake.chain([(code.run, 0)])[0], of: third)
                target.threads[13] = .running
            case 3:
                // threading names it after it started.
                fake.nameThreads([(0x3000, "worker")])
            case 4:
                // The first thread exits: unlinked from the list, gone from the OS.
                fake.unlinkThread(first)
                target.threads[11] = nil
            default:
                break
            }
        }
        #expect(rounds[0].map(\.tid) == [11, 12])
        #expect(rounds[1].map(\.tid) == [11, 12, 13])
        #expect(rounds[1][2].name == nil)
        #expect(rounds[5].map(\.tid) == [12, 13])
        #expect(statistics.threads == 3)
    }

    @Test func aNameGivenAfterTheThreadStartedIsPickedUp() throws {
        let (target, _, _, _) = try fixture()
        let sampler = try Sampler(target: try target.python(), options: SamplerOptions())
        var names = [String?]()
        var named = false
        sampler.run(shouldStop: { statistics in
            if statistics.rounds == 2 { target.fake.nameThreads([(0x1000, "MainThread")]) }
            return named || statistics.elapsed > 2
        }, record: { thread, _, _, _ in
            names.append(thread.name)
            named = thread.name != nil
        })
        #expect(names.first == .some(nil))
        #expect(names.last == "MainThread")
    }

    @Test func tornStacksAndThreadsWithoutFramesGiveNoSample() throws {
        let (target, _, _, second) = try fixture()
        let fake = target.fake
        let torn = fake.code("torn", file: "app.py", firstLine: 1, lines: [1])
        fake.setTopFrame(fake.chain([(torn, 4096)])[0], of: second)
        fake.addThread(ident: 0x3000, nativeID: 13)  // no Python frames yet
        target.threads[12] = .running
        target.threads[13] = .running
        let (rounds, statistics) = try record(target, rounds: 3)
        #expect(rounds.allSatisfy { $0.map(\.tid) == [11] })
        #expect(statistics.torn == 3)
        #expect(statistics.errors == 0)
    }

    @Test func aTargetThatExitsEndsTheRecording() throws {
        let (target, _, _, _) = try fixture()
        let sampler = try Sampler(target: try target.python(), options: SamplerOptions())
        target.alive = false
        target.fake.memory.failAfterReads = target.fake.memory.readCount
        let stop = sampler.run(shouldStop: { $0.rounds > 100 }, record: { _, _, _, _ in })
        #expect(stop == .targetExited)
    }
}

/// One path for what every report shares: the frame label, the number formatter and the
/// summary's top functions.
@Suite struct OnePathTests {
    @Test func topFunctionsCountAllLinesOfAFunctionTogether() {
        var profile = Profile(metadata: ProfileMetadata(command: "app", pid: 1, pythonVersion: nil, rate: 100, startTime: 0, duration: 1))
        let thread = SampledThread(pid: 1, tid: 1, ident: 1, name: nil)
        func frame(_ name: String, line: Int, first: Int) -> Frame {
            Frame(kind: .python, name: name, file: "app.py", line: line, functionLine: first)
        }
        // `work` spread over three lines (2+2+2 samples) beats `hot` on one line (5).
        for (line, count) in [(11, 2), (12, 2), (13, 2)] {
            for _ in 0..<count { profile.add(rootFirst: [frame("main", line: 3, first: 1), frame("work", line: line, first: 10)], thread: thread, time: 0) }
        }
        for _ in 0..<5 { profile.add(rootFirst: [frame("main", line: 4, first: 1), frame("hot", line: 21, first: 20)], thread: thread, time: 0) }
        let top = profile.topSelf(5)
        #expect(top.map(\.frame.label) == ["work (app.py:10)", "hot (app.py:20)"])
        #expect(top.map(\.samples) == [6, 5])
    }

    @Test func framesAreLabelledOneWay() {
        let python = Frame(kind: .python, name: "m", qualname: "C.m", file: "a.py", line: 7)
        #expect(python.label == "C.m (a.py:7)")
        #expect(python.functionName == "C.m")
        #expect(Frame(kind: .kernel, name: "do_syscall_64").label == "do_syscall_64_[k]")
        #expect(Frame(kind: .native, name: "PyEval_EvalFrame").label == "PyEval_EvalFrame")
        #expect(Frame.marker("thread main (tid 1)").label == "thread main (tid 1)")
    }

    @Test func numbersAreFormattedOneWay() {
        #expect(NumberFormat.grouped(1_234_567) == "1,234,567")
        #expect(NumberFormat.grouped(-1000) == "-1,000")
        #expect(NumberFormat.percent(1, of: 3) == "33.3%")
        #expect(NumberFormat.percent(2, of: 3) == "66.7%")
        #expect(NumberFormat.percent(5, of: 0) == "0.0%")
        #expect(NumberFormat.fixed(2.25, 1) == "2.3")
        #expect(NumberFormat.fixed(-0.04, 1) == "0.0")
        #expect(NumberFormat.fixed(12.5, 0) == "13")
    }
}
