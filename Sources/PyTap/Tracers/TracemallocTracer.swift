import Glibc

/// What `memtrace --via tracemalloc` is asked to do.
public struct TracemallocOptions: Sendable {
    public var duration: Double?
    public var minimumAge: Double?
    /// tracemalloc's traceback limit when pytap starts it.
    public var frames = TracemallocOptions.defaultFrames
    /// tracemalloc walks this many frames at most on every allocation while it traces.
    public static let defaultFrames = 16
    public static let maximumFrames = 1000
    /// Seconds between snapshots at least (each dates the blocks it sees first).
    public var snapshotInterval = 1.0
    /// How long the target may take to run the first step.
    public var startTimeout = 10.0

    public init(duration: Double?, minimumAge: Double?) {
        self.duration = duration
        self.minimumAge = minimumAge
    }
}

/// Why `--via tracemalloc` cannot trace this target, as a user reads it.
public struct TracemallocUnavailable: Error {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// What a trace with tracemalloc found.
public struct TracemallocResult: Sendable {
    /// Groups by stack (frames innermost first), times bounded by the snapshots; no type
    /// (tracemalloc keeps no addresses to read an object's type at).
    public var survivors: [MemtraceReport.Survivors] = []
    public var seconds = 0.0
    public var snapshots = 0
    /// tracemalloc's traceback limit during the trace.
    public var tracebackLimit = 0
    /// Whether tracemalloc was on before pytap came (then it is left on).
    public var wasTracing = false
    /// Seconds from pytap's request until tracemalloc ran in the target.
    public var startSeconds = 0.0
    public var targetExited = false
}

/// `memtrace --via tracemalloc` (3.14+): the standard library's tracemalloc switched on in
/// the target through CPython's remote-debugging protocol (`RemoteExecRequest`), which runs
/// `TracemallocScript` steps there: start (and a first snapshot), a snapshot about every
/// second, and finish (a last snapshot, tracemalloc stopped unless it was on before, the
/// blocks present from the `--min-age` snapshot to the end grouped by stack), run by pytap
/// or, when the target exits first, by the exit hook the start step registered. Scripts and
/// answers live in a `ScratchDirectory` under the target's /tmp, removed at the end; one
/// left by a pytap that was killed is cleaned up by the next run on the same process.
public final class TracemallocTracer {
    public static let directoryPrefix = "pytap-tracemalloc-"
    static let parentPath = "/tmp"

    let target: PythonTarget
    let process: LinuxProcess
    let options: TracemallocOptions
    let request: RemoteExecRequest
    /// A killed pytap's session started tracemalloc: this one stops it at the end.
    let startedByStalePytap: Bool
    var directory: ScratchDirectory?
    var steps = 0

    /// Checks that the protocol is available and cleans up what a killed pytap left.
    /// Throws `TracemallocUnavailable` saying why not.
    public init(target: PythonTarget, options: TracemallocOptions) throws {
        guard let process = target.process else { throw TracemallocUnavailable("memtrace needs a live process") }
        self.target = target
        self.process = process
        self.options = options
        do {
            request = try RemoteExecRequest(target: target)
            guard try request.isEnabled() else { throw RemoteExecRequest.Refusal.disabled }
        } catch let refusal as RemoteExecRequest.Refusal {
            throw TracemallocUnavailable(TracemallocTracer.describe(refusal, target: target))
        }
        startedByStalePytap = try TracemallocTracer.removeStaleSessions(of: target.pid, request: request)
    }

    static func describe(_ refusal: RemoteExecRequest.Refusal, target: PythonTarget) -> String {
        switch refusal {
        case .unsupported(let version):
            return "--via tracemalloc needs Python 3.14 or later (remote debugging, PEP 768); process \(target.pid) runs \(version): use --via probes"
        case .disabled:
            return "process \(target.pid) has remote debugging disabled (-X disable-remote-debug, PYTHON_DISABLE_REMOTE_DEBUG or a build without it), so --via tracemalloc cannot run there: use --via probes"
        case .noThread:
            return "process \(target.pid) has no Python thread to run tracemalloc in: use --via probes"
        case .pathTooLong(let limit):
            return "the script path does not fit the target's \(limit)-byte buffer: use --via probes"
        }
    }

    /// Session directories of this target whose pytap is gone: their pending requests are
    /// taken back and the files removed. Returns whether one of them had started
    /// tracemalloc (then this session stops it). Throws when a live pytap traces it.
    static func removeStaleSessions(of pid: Int32, request: RemoteExecRequest) throws -> Bool {
        var startedTracing = false
        for name in ScratchDirectory.entries(pid: pid, parentPath: parentPath, prefix: "\(directoryPrefix)\(pid)-") {
            guard let stale = try? ScratchDirectory(pid: pid, parentPath: parentPath, existing: name) else { continue }
            if let owner = try? stale.read("owner"), let (ownerPID, ticks) = parseOwner(owner), ownerPID != getpid(),
               (try? LinuxProcess(pid: ownerPID).status().startTicks) == ticks {
                throw TracemallocUnavailable("pytap \(ownerPID) is tracing process \(pid) with tracemalloc already")
            }
            request.withdraw(pathPrefix: stale.targetPath + "/")
            if let answer = try? stale.read("step0.out"), answer.hasPrefix("started\t0\t") { startedTracing = true }
            stale.remove()
        }
        return startedTracing
    }

    static func parseOwner(_ text: String) -> (Int32, UInt64)? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 2, let pid = Int32(fields[0]), let ticks = UInt64(fields[1]) else { return nil }
        return (pid, ticks)
    }

    /// Starts tracemalloc, snapshots until the duration passes, `shouldStop` says so or the
    /// target exits, then finishes; `started` is called once tracemalloc runs.
    public func run(shouldStop: () -> Bool, started: (TracemallocResult) -> Void) throws -> TracemallocResult {
        let pid = target.pid
        let session = try ScratchDirectory(pid: pid, parentPath: TracemallocTracer.parentPath,
                                           name: "\(TracemallocTracer.directoryPrefix)\(pid)-\(getpid())")
        directory = session
        defer { cleanUp() }
        let ownTicks = (try? LinuxProcess(pid: getpid()).status().startTicks) ?? 0
        try session.create("owner", contents: "\(getpid()) \(ownTicks)\n")
        try session.create(TracemallocScript.fileName, contents: TracemallocScript.library)

        var result = TracemallocResult()
        let requested = MonotonicClock.now()
        let minimumAge = options.minimumAge.map { "\(min($0, 1e9))" } ?? "None"  // a Python literal: no inf
        let startOptions = "{\"frames\": \(options.frames), \"started_by_stale_pytap\": \(startedByStalePytap ? "True" : "False"), \"min_age\": \(minimumAge)}"
        guard let answer = try perform("start", options: startOptions, timeout: options.startTimeout, shouldStop: shouldStop),
              let line = answer.first, line.first == "started", line.count == 4 else {
            if !process.isAlive { throw ProcessError.exited(pid: pid) }
            if shouldStop() { throw TracemallocUnavailable("interrupted before tracemalloc started in process \(pid)") }
            throw TracemallocUnavailable("process \(pid) ran no Python code for \(Int(options.startTimeout)) s, so tracemalloc could not be started (its threads may be blocked in C calls or sleeping): use --via probes, which does not need the target to run")
        }
        let startedAt = MonotonicClock.now()
        result.wasTracing = line[1] == "1"
        result.tracebackLimit = Int(line[2]) ?? 0
        result.startSeconds = Double(startedAt - requested) / 1e9
        result.snapshots = 1
        started(result)

        let end = options.duration.map { startedAt + UInt64($0 * 1e9) }
        // With a duration, one snapshot exactly --min-age before the end.
        var windowSnapshot = end.flatMap { end in options.minimumAge.map { end - min(end - startedAt, UInt64($0 * 1e9)) } }
        var next = startedAt + UInt64(options.snapshotInterval * 1e9)
        var snapshotsWork = true
        while !shouldStop() {
            let now = MonotonicClock.now()
            if let end, now >= end { break }
            if !process.isAlive {
                if try readExitAnswer(session, into: &result) { return result }
                result.targetExited = true
                break
            }
            if snapshotsWork, now >= next || windowSnapshot.map({ now >= $0 }) == true {
                if let window = windowSnapshot, now >= window { windowSnapshot = nil }
                let answer = try perform("snapshot", options: "{}", timeout: 30, shouldStop: { false })
                if answer?.first == ["ended"] { return try awaitExitAnswer(session, result) }
                guard let line = answer?.first, line.first == "snapshot", line.count == 4, let cost = Double(line[3]) else {
                    snapshotsWork = false  // the target is busy elsewhere: finish with what there is
                    continue
                }
                result.snapshots += 1
                let elapsed = Double(MonotonicClock.now() - startedAt) / 1e9
                // Snapshots hold the target's GIL: at most ~5% of its time, and ~300 of them.
                next = MonotonicClock.now() + UInt64(max(options.snapshotInterval, 20 * cost, elapsed / 300) * 1e9)
                continue
            }
            var wake = min(next, now + 50_000_000)
            if let end { wake = min(wake, end) }
            if let window = windowSnapshot { wake = min(wake, window) }
            _ = MonotonicClock.sleep(until: wake)
        }
        if result.targetExited { return result }
        let finishOptions = "{\"was_tracing\": \(result.wasTracing ? "True" : "False"), \"min_age\": \(minimumAge)}"
        guard let lines = try perform("finish", options: finishOptions, timeout: 300, shouldStop: { false }) else {
            if !process.isAlive {
                result.targetExited = try !readExitAnswer(session, into: &result)
                return result
            }
            throw TracemallocUnavailable("process \(pid) did not finish the trace within 300 s; tracemalloc may still be on in it (the next pytap memtrace --via tracemalloc on it stops it)")
        }
        if lines.first == ["ended"] { return try awaitExitAnswer(session, result) }
        try TracemallocTracer.parseFinish(lines, into: &result)
        return result
    }

    /// A step found the trace ended by the exit hook (the target is exiting): its answer,
    /// once written, or `targetExited` when the process is gone without one.
    func awaitExitAnswer(_ session: ScratchDirectory, _ partial: TracemallocResult) throws -> TracemallocResult {
        var result = partial
        let deadline = MonotonicClock.now() + 300_000_000_000
        while MonotonicClock.now() < deadline {
            let alive = process.isAlive
            if try readExitAnswer(session, into: &result) { return result }
            if !alive {
                result.targetExited = true
                return result
            }
            _ = MonotonicClock.sleep(until: MonotonicClock.now() + 10_000_000)
        }
        throw TracemallocUnavailable("process \(target.pid) is exiting but its exit hook gave no answer within 300 s")
    }

    /// The finish that the exit hook of the start step ran when the target exited first;
    /// false when there is none (it died by a signal or `os._exit`).
    func readExitAnswer(_ session: ScratchDirectory, into result: inout TracemallocResult) throws -> Bool {
        guard let answer = try session.read("exit.out") else { return false }
        try TracemallocTracer.parseFinish(TracemallocTracer.parseLines(answer), into: &result)
        return true
    }

    /// Runs one step in the target: writes its script, hands it to every thread, waits for
    /// its answer. nil when none came within `timeout` (or `shouldStop` or the target's exit
    /// ended the wait); throws what the step reported as an error.
    func perform(_ action: String, options stepOptions: String, timeout: Double, shouldStop: () -> Bool) throws -> [[String]]? {
        guard let directory else { return nil }
        let name = "step\(steps)"
        steps += 1
        try directory.create(name + ".py", contents: TracemallocScript.step(directory: directory.targetPath, name: name,
                                                                             action: action, options: stepOptions))
        let scriptPath = directory.targetPath + "/" + name + ".py"
        /// nil when the target is exiting: its thread list empties or its memory goes away
        /// while the request is written (then the exit hook's answer, if any, is what there is).
        func send() throws -> Int? {
            do {
                return try request.send(scriptPath: scriptPath, to: try request.threadStates()).count
            } catch {
                let refusal = error as? RemoteExecRequest.Refusal
                // Only a read failure or an empty thread list can mean the exit; the other
                // refusals (disabled, a path too long) are answered at once.
                if refusal == nil || refusal == .noThread, awaitExit(within: 2_000_000_000) { return nil }
                if let refusal { throw TracemallocUnavailable(TracemallocTracer.describe(refusal, target: target)) }
                throw error
            }
        }
        guard var asked = try send() else { return nil }
        var checked = MonotonicClock.now()
        let deadline = checked + UInt64(timeout * 1e9)
        while true {
            // Run but not claimed: a thread ran the step while the interpreter was still
            // starting (no `open` yet: launch mode), and the step did nothing. Asked again;
            // a step that did run answers a repeat by doing nothing.
            if MonotonicClock.now() - checked >= 200_000_000 {
                checked = MonotonicClock.now()
                if (try? directory.read(name + ".claim")) == nil, request.pendingThreads(pathPrefix: scriptPath).count < asked {
                    guard let again = try send() else { return nil }
                    asked = again
                }
            }
            if let text = try directory.read(name + ".out") {
                let lines = TracemallocTracer.parseLines(text)
                if let first = lines.first, first.first == "error" {
                    throw TracemallocUnavailable("tracemalloc step \(action) failed in process \(target.pid): \(first.dropFirst().joined(separator: " "))")
                }
                return lines
            }
            if MonotonicClock.now() >= deadline || shouldStop() || !process.isAlive {
                // Taken back, unless a thread has it already (then its answer comes soon).
                request.withdraw(pathPrefix: directory.targetPath + "/")
                if (try? directory.read(name + ".claim")) != nil, process.isAlive {
                    _ = MonotonicClock.sleep(until: MonotonicClock.now() + 2_000_000_000)
                    if let text = try directory.read(name + ".out") { return TracemallocTracer.parseLines(text) }
                }
                return nil
            }
            _ = MonotonicClock.sleep(until: MonotonicClock.now() + 5_000_000)
        }
    }

    /// Whether the target is gone (or a zombie) within `nanoseconds`: a process in exit
    /// loses its memory a moment before /proc shows it dead.
    func awaitExit(within nanoseconds: UInt64) -> Bool {
        let deadline = MonotonicClock.now() + nanoseconds
        while process.isAlive {
            if MonotonicClock.now() >= deadline { return false }
            _ = MonotonicClock.sleep(until: MonotonicClock.now() + 5_000_000)
        }
        return true
    }

    /// Pending requests taken back, then the files removed.
    func cleanUp() {
        guard let directory else { return }
        request.withdraw(pathPrefix: directory.targetPath + "/")
        directory.remove()
        self.directory = nil
    }

    /// Lines of tab-separated fields, each unescaped (`\\`, `\t`, `\n`, `\r`).
    static func parseLines(_ text: String) -> [[String]] {
        text.split(separator: "\n").map { line in
            line.split(separator: "\t", omittingEmptySubsequences: false).map { field in
                var out = ""
                var escaped = false
                for character in field {
                    if escaped {
                        switch character {
                        case "t": out.append("\t")
                        case "n": out.append("\n")
                        case "r": out.append("\r")
                        default: out.append(character)
                        }
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else {
                        out.append(character)
                    }
                }
                return out
            }
        }
    }

    /// The finish step's answer: `finished SECONDS STOPPED`, then per group
    /// `group COUNT BYTES FIRST_MS LAST_MS` and its `frame FILE LINE NAME QUALNAME` lines.
    static func parseFinish(_ lines: [[String]], into result: inout TracemallocResult) throws {
        guard let head = lines.first, head.first == "finished", head.count >= 2, let seconds = Double(head[1]) else {
            throw TracemallocUnavailable("the target's tracemalloc answer was malformed")
        }
        result.seconds = seconds
        var groups = [MemtraceReport.Survivors]()
        for line in lines.dropFirst() {
            switch line.first {
            case "group" where line.count == 5:
                guard let count = Int(line[1]), let bytes = UInt64(line[2]),
                      let first = Double(line[3]), let last = Double(line[4]), first >= 0, last >= 0 else { continue }
                groups.append(MemtraceReport.Survivors(count: count, bytes: bytes, firstNanoseconds: UInt64(first * 1e6),
                                                       lastNanoseconds: UInt64(last * 1e6), frames: [], type: nil))
            case "frame" where line.count == 5 && !groups.isEmpty:
                let frame = Frame(kind: .python, name: line[3], qualname: line[4], file: line[1], line: Int(line[2]))
                groups[groups.count - 1].frames.append(frame)
            default:
                continue
            }
        }
        result.survivors = groups.map { group in
            var group = group
            if group.frames.isEmpty { group.frames = [.marker("(no Python frame)")] }
            return group
        }
    }
}
