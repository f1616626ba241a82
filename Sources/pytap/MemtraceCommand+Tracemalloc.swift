import ArgumentParser
import PyTap

extension MemtraceCommand {
    /// tracemalloc where the target has CPython's remote-debugging protocol (3.14+), else probes.
    static func defaultMechanism(for target: PythonTarget) -> MemtraceMechanism {
        RemoteExecRequest.isSupported(by: target) ? .tracemalloc : .probes
    }

    /// `--via tracemalloc`: the trace, then the same report as the probes'.
    func runTracemalloc(_ acquired: AcquiredTarget) throws {
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
            Failure(message: "process \(pid) exited while traced; tracemalloc's traces went with it", status: .failure).exit()
        }
        let functions = ["traceback limit \(result.tracebackLimit)", "\(result.snapshots) snapshots"]
        let report = MemtraceReport(survivors: result.survivors, seconds: result.seconds, minimumAge: minimumAge,
                                    via: "tracemalloc", functions: functions)
        do {
            try writeStandardOutput(json ? report.json() : report.text(limit: limit))
        } catch {
            Failure.from(error, pid: nil).exit()
        }
        let status = acquired.finish(stoppedByPytap: true)
        if status != 0 { throw ExitCode(status) }
    }
}
