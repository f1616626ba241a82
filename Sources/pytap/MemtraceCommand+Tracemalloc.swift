import ArgumentParser
import PyTap

extension MemtraceCommand {
    /// tracemalloc where the target has CPython's remote-debugging protocol (3.14+), else probes.
    static func defaultMechanism(for target: PythonTarget) -> MemtraceMechanism {
        RemoteExecRequest.isSupported(by: target) ? .tracemalloc : .probes
    }

    /// `--via tracemalloc`: the trace, then the same report as the probes'.
    func runTracemalloc(_ acquired: AcquiredTarget, destination: OutputFile?, startTime: Double) throws {
        let pid = acquired.target.pid
        let result: TracemallocResult
        do {
            let tracer = try TracemallocTracer(target: acquired.target,
                                               options: TracemallocOptions(duration: duration, minimumAge: minimumAge))
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
