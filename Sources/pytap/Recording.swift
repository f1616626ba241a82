import PyTap

/// One `pytap sample` recording: runs the sampler with a live progress line and builds
/// the profile; also writes the end-of-run summary.
final class Recording {
    let target: PythonTarget
    let options: SamplerOptions
    let duration: Double?
    let showProgress: Bool
    private(set) var statistics = SamplerStatistics()
    private(set) var stop: SamplerStop = .requested

    init(target: PythonTarget, options: SamplerOptions, duration: Double?, showProgress: Bool) {
        self.target = target
        self.options = options
        self.duration = duration
        self.showProgress = showProgress
    }

    func record(commandLine: [String]?) throws -> Profile {
        let sampler = try Sampler(target: target, options: options)
        let startTime = MonotonicClock.wallClock()
        let name = (try? target.process.name()) ?? "?"
        let duration = self.duration
        let command = commandLine ?? ((try? target.process.commandLine()) ?? [])
        // Samples go straight into the profile's per-thread timelines (16 bytes each);
        // its frame and stack tables are the sampler's, taken at the end.
        var profile = Profile(metadata: ProfileMetadata(command: command.joined(separator: " "), pid: target.pid,
                                                        pythonVersion: nil, rate: options.rate, startTime: startTime,
                                                        duration: 0, byFunction: options.byFunction))
        stop = sampler.run(
            shouldStop: { stats in
                if InterruptFlag.isSet { return true }
                if let duration, stats.elapsed >= duration { return true }
                return false
            },
            record: { thread, stack, time, state in profile.add(stack: stack, thread: thread, time: time, state: state) },
            progress: { [showProgress, pid = target.pid] stats in
                if showProgress { writeStandardError(Recording.progressLine(stats, pid: pid, name: name)) }
            })
        statistics = sampler.statistics
        if showProgress { writeStandardError("\r\u{1b}[K") }
        profile.frames = sampler.frames
        profile.stacks = sampler.stacks
        profile.metadata.pythonVersion = sampler.pythonVersion
        profile.metadata.duration = statistics.elapsed
        return profile
    }

    /// "pytap: sampling 1234 (python3)  12.3s  12,300 samples  1000/s  2 torn", redrawn in place.
    static func progressLine(_ stats: SamplerStatistics, pid: Int32, name: String) -> String {
        let rate = Int(stats.roundRate.rounded())
        var line = "\rpytap: sampling \(pid) (\(name))  " + String(format1: stats.elapsed) + "s"
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
        if case .targetExecutedNonPython(let executable) = stop { text += "; the target exec'd \(executable), which is not Python" }
        text += "\n"
        let top = profile.topSelf(5)
        if !top.isEmpty {
            text += "top functions by own samples:\n"
            for (frame, samples) in top {
                let share = percent(samples, of: s.samples)
                text += "  " + String(repeating: " ", count: max(0, 6 - share.count)) + share + "  " + frame.label + "\n"
            }
        } else if s.samples == 0 {
            text += "no samples: no thread ran Python code on a CPU (try --idle to include waiting threads)\n"
        }
        return text
    }
}

extension String {
    /// A number with one decimal.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
