import Glibc
import PyTap

/// One `pytap sample` recording: runs the sampler with a live progress line and builds
/// the profile; also writes the end-of-run summary. In launch mode a recording can span
/// several Python processes run one after another by the command (`sh -c 'python a;
/// python b'`): each is sampled in turn into the same profile.
final class Recording {
    let options: SamplerOptions
    let duration: Double?
    let showProgress: Bool
    private(set) var statistics = SamplerStatistics()
    private(set) var stop: SamplerStop = .requested
    /// Whether `--duration` ended the recording (rather than a signal or the target's exit).
    private(set) var reachedDuration = false
    /// `--native`: native stacks by the BPF program, when the kernel allows it.
    let native: NativeSamplingOptions?
    /// How the stacks were captured, for the summary (set with `native`).
    private(set) var captureMethod: String?
    private(set) var capture: ChosenSampler.Capture?

    init(options: SamplerOptions, duration: Double?, showProgress: Bool, native: NativeSamplingOptions? = nil) {
        self.options = options
        self.duration = duration
        self.showProgress = showProgress
        self.native = native
    }

    /// The sampler of one target (see `ChosenSampler`); its capture method kept for the summary.
    private func makeSampler(target: PythonTarget, options: SamplerOptions) throws -> any StackSampler {
        let chosen = try ChosenSampler(target: target, options: options, native: native)
        captureMethod = chosen.captureMethod
        capture = chosen.capture
        return chosen.sampler
    }

    /// Samples `first`, then each target `next` returns (given the PIDs sampled so far and
    /// the monotonic deadline of `--duration`) after the previous one exited, until nil.
    func record(first: PythonTarget, commandLine: [String]?,
                next: (Set<Int32>, UInt64?) -> PythonTarget? = { _, _ in nil }) throws -> Profile {
        let startTime = MonotonicClock.wallClock()
        let start = MonotonicClock.now()
        let deadline = duration.map { start + UInt64((min($0, 1e9) * 1e9).rounded(.up)) }
        let command = commandLine ?? first.source.commandLine()
        // Samples go straight into the profile's per-thread timelines (16 bytes each); its
        // frame and stack tables are the first sampler's, taken at the end. Later processes'
        // samples are re-interned into them.
        var profile = Profile(metadata: ProfileMetadata(command: command.joined(separator: " "), pid: first.pid,
                                                        pythonVersion: nil, rate: options.rate, startTime: startTime,
                                                        duration: 0, byFunction: options.byFunction))
        var target = first
        var sampled: Set<Int32> = []
        var before = SamplerStatistics()
        while true {
            sampled.insert(target.pid)
            let offset = MonotonicClock.now() - start
            var segmentOptions = options
            if let duration { segmentOptions.stopAfter = max(0, duration - Double(offset) / 1e9) }
            let sampler = try makeSampler(target: target, options: segmentOptions)
            let isFirst = sampled.count == 1
            var later: [(thread: SampledThread, stack: UInt32, time: UInt64, state: SampleState)] = []
            let name = target.source.name()
            stop = sampler.run(
                shouldStop: { _ in InterruptFlag.isSet },
                record: { thread, stack, time, state in
                    if isFirst { profile.add(stack: stack, thread: thread, time: time, state: state) } else { later.append((thread, stack, time + offset, state)) }
                },
                progress: { [showProgress, pid = target.pid] stats in
                    if showProgress { writeStandardError(Recording.progressLine(before.adding(stats, offset: offset), pid: pid, name: name)) }
                })
            statistics = before.adding(sampler.statistics, offset: offset)
            before = statistics
            if isFirst {
                profile.frames = sampler.frames
                profile.stacks = sampler.stacks
                profile.metadata.pythonVersion = sampler.pythonVersion
            } else {
                var translated = [UInt32: UInt32]()
                for sample in later {
                    let stack = translated[sample.stack] ?? {
                        let ids = sampler.stacks[sample.stack].map { profile.frames.id(for: sampler.frames[$0]) }
                        let id = profile.stacks.id(for: ids)
                        translated[sample.stack] = id
                        return id
                    }()
                    profile.add(stack: stack, thread: sample.thread, time: sample.time, state: sample.state)
                }
            }
            if stop == .requested {
                reachedDuration = !InterruptFlag.isSet
                break
            }
            guard let following = next(sampled, deadline) else {
                reachedDuration = deadline.map { MonotonicClock.now() >= $0 } ?? false
                break
            }
            target = following
        }
        if showProgress { writeStandardError("\r\u{1b}[K") }
        statistics.elapsed = Double(MonotonicClock.now() - start) / 1e9
        profile.metadata.duration = statistics.elapsed
        return profile
    }

    /// "pytap: sampling 1234 (python3)  12.3s  12,300 samples  1000/s  2 torn", redrawn in place.
    static func progressLine(_ stats: SamplerStatistics, pid: Int32, name: String) -> String {
        let rate = Int(stats.roundRate.rounded())
        var line = "\rpytap: sampling \(pid) (\(name.escapingControlCharacters))  " + String(format1: stats.elapsed) + "s"
        line += "  " + grouped(stats.samples) + " samples  \(rate)/s"
        if stats.torn > 0 { line += "  \(stats.torn) torn" }
        if stats.errors > 0 { line += "  \(stats.errors) errors" }
        if stats.processes > 1 { line += "  \(stats.processes) processes" }
        return line + "\u{1b}[K"
    }

    /// ": code object unreadable 40, frame unreadable 3", most frequent first; empty without errors.
    static func errorBreakdown(_ kinds: [String: Int]) -> String {
        guard !kinds.isEmpty else { return "" }
        let sorted = kinds.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        return ": " + sorted.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// Samples, threads, torn and lost samples, and the top functions by own samples.
    func summary(profile: Profile) -> String {
        let s = statistics
        var text = "pytap: \(grouped(s.samples)) samples of \(s.threads) thread\(s.threads == 1 ? "" : "s")"
        if s.processes > 1 { text += " in \(s.processes) processes" }
        text += " in \(String(format1: s.elapsed))s (\(grouped(s.rounds)) rounds at \(Int(s.roundRate.rounded()))/s"
        text += "; torn \(s.torn), rounds missed \(s.missedRounds), errors \(s.errors)" + Recording.errorBreakdown(s.errorKinds) + ")"
        if s.execs > 0 { text += "; the target exec'd a new Python \(s.execs == 1 ? "once" : "\(s.execs) times"), followed" }
        if stop == .targetExited { text += "; the target exited" }
        if let captureMethod {
            text += "\ncapture: " + captureMethod
            if capture == .bpf {
                text += "; \(grouped(s.lostSamples)) samples lost (ring buffer full)"
                if s.stackCopies > 0 {
                    text += "; user stack copied: \(grouped(s.stackBytesCopied / s.stackCopies)) bytes a sample"
                    text += "; target memory read \(grouped(s.liveReads)) times (\(NumberFormat.fixed(Double(s.liveReads) / Double(s.stackCopies), 3)) a sample)"
                }
            }
        }
        if case .targetExecutedNonPython(let executable) = stop { text += "; the target exec'd \(executable), which is not Python" }
        text += "\n"
        let top = profile.topSelf(5)
        if !top.isEmpty {
            text += "top functions by own samples:\n"
            for (frame, samples) in top {
                let share = percent(samples, of: s.samples)
                text += "  " + String(repeating: " ", count: max(0, 6 - share.count)) + share + "  " + frame.label.escapingControlCharacters + "\n"
            }
        } else if s.samples == 0 {
            text += "no samples: no thread ran Python code on a CPU (try --idle to include waiting threads)\n"
        }
        return text
    }
}

extension SamplerStatistics {
    /// These counts followed by those of a later sampler that started `offset` ns in.
    func adding(_ later: SamplerStatistics, offset: UInt64) -> SamplerStatistics {
        var sum = self
        sum.rounds += later.rounds
        sum.missedRounds += later.missedRounds
        sum.samples += later.samples
        sum.torn += later.torn
        sum.retries += later.retries
        sum.errors += later.errors
        sum.errorKinds.merge(later.errorKinds, uniquingKeysWith: +)
        sum.execs += later.execs
        sum.lostSamples += later.lostSamples
        sum.stackCopies += later.stackCopies
        sum.stackBytesCopied += later.stackBytesCopied
        sum.liveReads += later.liveReads
        sum.processes += later.processes
        sum.threads += later.threads
        sum.elapsed = Double(offset) / 1e9 + later.elapsed
        return sum
    }
}

extension String {
    /// A number with one decimal.
    init(format1 value: Double) { self = NumberFormat.fixed(value, 1) }
}
