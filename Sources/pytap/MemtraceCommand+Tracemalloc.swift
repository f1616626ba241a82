import ArgumentParser
import PyTap

extension MemtraceCommand {
    /// tracemalloc where the target has CPython's remote-debugging protocol (3.14+), else probes.
    static func defaultMechanism(for target: PythonTarget) -> MemtraceMechanism {
        RemoteExecRequest.isSupported(by: target) ? .tracemalloc : .probes
    }

    /// Launch mode: the request is sent once a frame of the program's own code (not a
    /// frozen start-up module) runs, at most `timeout` seconds after it became Python. A
    /// request taken while the import system is not yet up makes CPython print an error in
    /// the target; later in start-up the step does nothing and is asked again.
    static func waitUntilProgramCodeRuns(_ target: PythonTarget, timeout: Double = 5) {
        guard let snapshotter = try? Snapshotter(target: target) else { return }
        let deadline = MonotonicClock.now() + UInt64(timeout * 1e9)
        while MonotonicClock.now() < deadline, !InterruptFlag.isSet {
            if let snapshot = try? snapshotter.snapshot(),
               snapshot.threads.contains(where: { $0.frames.contains { !($0.file ?? "<frozen").hasPrefix("<frozen") } }) { return }
            _ = MonotonicClock.sleep(until: MonotonicClock.now() + 10_000_000)
        }
    }

    /// `--via tracemalloc`: the trace, then the same report as the probes'.
    func runTracemalloc(_ acquired: AcquiredTarget, destination: OutputFile?, startTime: Double) throws {
        let pid = acquired.target.pid
        if acquired.child != nil { MemtraceCommand.waitUntilProgramCodeRuns(acquired.target) }
        let result: TracemallocResult
        do {
            var options = TracemallocOptions(duration: duration, minimumAge: minimumAge)
            if let frames { options.frames = frames }
            let tracer = try TracemallocTracer(target: acquired.target, options: options)
            result = try tracer.run(shouldStop: { InterruptFlag.isSet }) { started in
                let before = started.wasTracing ? "; it was on already and stays on" : ""
                writeStandardError("pytap: tracemalloc on in process \(pid) after \(Int((started.startSeconds * 1000).rounded())) ms (traceback limit \(started.tracebackLimit)\(before))\n")
            }
        } catch let error as TracemallocUnavailable {
            Failure(message: error.reason, status: .failure).exit()
        } catch {
            Failure.from(error, pid: pid).exit()
        }
        if result.targetExited {
            Failure(message: "process \(pid) exited while traced without running its exit hooks (a signal, os._exit); tracemalloc's traces went with it", status: .failure).exit()
        }
        var report = MemtraceReport(via: "tracemalloc", seconds: result.seconds, minimumAge: minimumAge, survivors: result.survivors)
        report.functions = ["traceback limit \(result.tracebackLimit)", "\(result.snapshots) snapshots"]
        do {
            try files.write(report, json: json, limit: limit, to: destination, target: acquired.target, startTime: startTime)
        } catch {
            Failure.from(error, pid: nil).exit()
        }
        let status = acquired.finish(stoppedByPytap: true)
        if status != 0 { throw ExitCode(status) }
    }
}
