import ArgumentParser
import PyTap

/// How `sample` and `top` name their target: a running process, or a command to start.
struct TargetOptions: ParsableArguments {
    // Unconditional, so `--pid -5` is read as a (bad) number, not as a missing value.
    @Option(name: [.customLong("pid"), .customShort("x")], parsing: .unconditional, help: "Process ID of the Python process.")
    var pid: Int32?

    @Argument(parsing: .postTerminator, help: "A command to start and follow until it exits (after --).")
    var command: [String] = []

    func validate() throws {
        if pid == nil && command.isEmpty { throw ValidationError("give --pid PID, or a command after --") }
        if pid != nil && !command.isEmpty { throw ValidationError("give either --pid or a command after --, not both") }
        if let pid { try validateProcessID(pid) }
    }

    /// Attaches or launches; on failure prints the error and exits with its status.
    func acquire() -> AcquiredTarget {
        do {
            return try pid.map(TargetAcquisition.attach) ?? TargetAcquisition.launch(command)
        } catch {
            Failure.from(error, pid: pid).exit()
        }
    }
}

/// A PID is positive (kill(2) reads 0 and negative numbers as process groups).
func validateProcessID(_ pid: Int32) throws {
    if pid <= 0 { throw ValidationError("--pid must be a positive process ID, not \(pid)") }
}

/// What `sample` and `top` sample: how often, and which threads.
struct SamplingOptions: ParsableArguments {
    @Option(name: [.customLong("rate"), .customShort("r")], help: "Samples per second per thread (1–20000).")
    var rate: Int = 100

    @Flag(name: .long, help: "Also sample idle threads (sleeping, waiting on I/O, locks or the GIL).")
    var idle = false

    @Flag(name: .long, help: "Only keep samples of the thread holding the GIL.")
    var gil = false

    @Option(name: .long, help: "cpu: threads on a CPU (default); wall: every thread, as --idle; exception: only threads handling or raising an exception.")
    var mode: SamplingMode?

    @Flag(name: .customLong("no-gc"), help: "No <GC> frame on top of the thread running the cyclic garbage collector.")
    var noGC = false

    func validate() throws {
        if rate < 1 || rate > 20_000 { throw ValidationError("--rate must be between 1 and 20000") }
        if mode == .cpu && idle { throw ValidationError("--mode cpu samples threads on a CPU only; --idle adds idle threads (that is --mode wall)") }
    }

    /// Sampler options with these set.
    var samplerOptions: SamplerOptions {
        var options = SamplerOptions()
        options.rate = rate
        options.includeIdle = idle || mode == .wall
        options.onlyGIL = gil
        options.onlyExceptions = mode == .exception
        options.gcFrames = !noGC
        return options
    }
}

/// What `--mode` samples: the threads on a CPU, every thread, or those in an exception.
enum SamplingMode: String, ExpressibleByArgument, CaseIterable {
    case cpu, wall, exception
}
