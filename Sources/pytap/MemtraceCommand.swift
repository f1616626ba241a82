import ArgumentParser
import PyTap

/// How memtrace sees allocations.
enum MemtraceMechanism: String, ExpressibleByArgument, CaseIterable {
    case probes, tracemalloc
}

struct MemtraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memtrace",
        abstract: "Find leaks in a running Python: the allocations made while tracing that are still alive at the end, by stack.",
        discussion: """
            --via probes (every version, the default before 3.14): uprobes on CPython's object allocator (_PyObject_Malloc, \
            _PyObject_Calloc, _PyObject_Realloc, _PyObject_Free; 2.7's PyObject_*), handled by a BPF \
            program that keeps each allocation with its size, time and the Python stack walked in the \
            kernel, until it is freed. Nothing is written to the target; the probes vanish with pytap, \
            however it ends. Needs root (or CAP_BPF and CAP_PERFMON) and the allocator's symbols \
            (.symtab or a debug file). Each allocation costs the allocating thread three probe hits \
            (~10 µs each on a small VM, 1–3 µs on bare metal): allocation-heavy code runs many times \
            slower while traced. pytap prints the measured rate after the first second.

            --via tracemalloc (3.14+, the default there): switches on the standard library's \
            tracemalloc inside the target through CPython's remote-debugging protocol (PEP 768, \
            what sys.remote_exec does) - this RUNS CODE IN THE TARGET - takes a snapshot about \
            every second, and stops tracemalloc again at the end (unless it was on before). \
            Stacks and file:line are tracemalloc's; blocks are dated by the first snapshot that \
            saw them. Needs a target that allows remote debugging and runs Python code now and then.

            Ctrl-C, the end of --duration or the target's exit end the trace; what survived is reported \
            (with tracemalloc, at the target's exit by an atexit hook; one killed by a signal or \
            os._exit takes its traces with it: an error).

            Examples:
              pytap memtrace -x 1234 -t 60
              pytap memtrace --pid 1234 --duration 30 --min-age 10 --json > leaks.json
              pytap memtrace -x 1234 -t 60 -o leaks.svg        # flame graph of surviving bytes
            """
    )

    @Option(name: [.customLong("duration"), .customShort("t")], help: "Seconds to trace (default: until Ctrl-C or the program exits).")
    var duration: Double?

    @Option(name: .customLong("min-age"), help: "Only report blocks at least this many seconds old at the end (leaks rather than work in flight).")
    var minimumAge: Double?

    @Option(name: .long, help: "How to see allocations: tracemalloc (3.14+, the default there; runs code in the target) or probes (uprobes and BPF; every version, the default before 3.14 and with --all).")
    var via: MemtraceMechanism?

    @Option(name: .long, help: "With --via tracemalloc: Python frames kept per allocation, innermost first (tracemalloc's traceback limit, 1-\(TracemallocOptions.maximumFrames)). The target pays for each frame on every allocation. (default: \(TracemallocOptions.defaultFrames))")
    var frames: Int?

    @Flag(name: .long, help: "Also probe the C library's malloc, calloc, realloc and free: buffers the object allocator does not make (2.7's, PyMem_RawMalloc's, extensions'); slower still.")
    var all = false

    @Flag(name: .long, help: "JSON on stdout instead of text.")
    var json = false

    @Option(name: .customLong("max-allocations"), help: "Live allocations kept in the kernel at most (more are counted as lost).")
    var maximumAllocations = 1 << 19

    @Option(name: .long, help: "Stack groups printed (text output).")
    var limit = 50

    @OptionGroup var files: MemtraceOutputOptions

    @OptionGroup var target: TargetOptions

    func validate() throws {
        if let duration, !(duration > 0) { throw ValidationError("--duration must be a positive number of seconds") }
        if let minimumAge, !(minimumAge >= 0) { throw ValidationError("--min-age must be zero or more seconds") }
        if let frames, !(1...TracemallocOptions.maximumFrames).contains(frames) {
            throw ValidationError("--frames must be between 1 and \(TracemallocOptions.maximumFrames)")
        }
        if frames != nil && (via == .probes || all) {
            throw ValidationError("--frames sets tracemalloc's traceback limit: it goes with --via tracemalloc (the probes keep up to 32 frames)")
        }
        if all && via == .tracemalloc { throw ValidationError("--all probes the C library's allocator: it goes with --via probes") }
        if maximumAllocations < 1 || maximumAllocations > 1 << 24 { throw ValidationError("--max-allocations must be between 1 and \(1 << 24)") }
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
        try files.validate(json: json)
    }

    func run() throws {
        InterruptFlag.install()
        let destination: OutputFile?
        do {
            destination = try files.prepare()
        } catch {
            Failure.from(error, pid: nil).exit()
        }
        let acquired = target.acquire()
        let startTime = MonotonicClock.wallClock()
        if (via ?? (all ? .probes : MemtraceCommand.defaultMechanism(for: acquired.target))) == .tracemalloc {
            try runTracemalloc(acquired, destination: destination, startTime: startTime)
            return
        }
        var options = MemtraceOptions(duration: duration)
        options.maximumAllocations = maximumAllocations
        options.systemAllocator = all
        let result: MemtraceResult
        let tracer: MemoryTracer
        do {
            tracer = try MemoryTracer(target: acquired.target, options: options)
            for warning in tracer.warnings { writeStandardError("pytap: warning: \(warning)\n") }
            var reported = false
            result = try tracer.run(shouldStop: { InterruptFlag.isSet }) { progress in
                guard !reported else { return }
                reported = true
                let rate = Int(progress.hitsPerSecond.rounded())
                let cost = Int((options.secondsPerHit * 1e6).rounded())
                let effect: String
                if progress.estimatedSlowdown >= 5 {
                    // Near saturation the estimate only bounds the slowdown from below.
                    let busy = Int(((1 - 1 / progress.estimatedSlowdown) * 100).rounded())
                    effect = "the allocating threads spend about \(busy)% of their time in the probes (\(Int(progress.estimatedSlowdown))× slower or more)"
                } else {
                    effect = "the allocating threads run about \((progress.estimatedSlowdown * 10).rounded() / 10)× slower"
                }
                writeStandardError("pytap: \(rate) probe hits/s; at ~\(cost) µs per hit \(effect) while traced\n")
            }
        } catch let error as MemtraceUnavailable {
            Failure(message: error.reason, status: .failure).exit()
        } catch let error as NativeCaptureUnavailable {
            Failure(message: error.reason, status: .failure).exit()
        } catch {
            Failure.from(error, pid: acquired.target.pid).exit()
        }
        let report = MemtraceReport(result: result, minimumAge: minimumAge, frames: tracer.location(of:))
        do {
            try files.write(report, json: json, limit: limit, to: destination, target: acquired.target, startTime: startTime)
        } catch {
            Failure.from(error, pid: nil).exit()
        }
        if result.targetExited { writeStandardError("pytap: process \(acquired.target.pid) exited; its code objects could not all be read\n") }
        let status = acquired.finish(stoppedByPytap: !result.targetExited)
        if status != 0 { throw ExitCode(status) }
    }
}
