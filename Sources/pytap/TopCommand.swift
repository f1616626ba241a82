import ArgumentParser
import Glibc
import PyTap

extension FunctionTable.SortKey: ExpressibleByArgument {}

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Live view of the functions using the most CPU in a Python program.",
        discussion: """
            Samples like `pytap sample` and shows, for each function, its share of samples as the \
            innermost frame (Own) and anywhere on the stack (Total), over the last interval and \
            since the start (OwnTime/TotalTime, in seconds of CPU).

            With --native, C functions of extensions, libraries and the interpreter (and with \
            --kernel, kernel functions) are rows of their own, their kind in the Kind column \
            (py, native, kernel) and, on a terminal, in colour as in the flame graph (native blue, \
            kernel purple); captured by a BPF program, the target is never stopped.

            Keys: 1 sort by own, 2 sort by total, t cycle through threads (all, then one at a time), \
            p pause, q or Ctrl-C quit.

            Without a terminal (or with --once) it prints plain tables: one per interval, or a single \
            one after the first interval with --once.

            Examples:
              pytap top --pid 1234
              pytap top -x 1234 --once --interval 5 --sort total
              pytap top -x 1234 --native --kernel
              pytap top -- python3 app.py
            """
    )

    static let longestInterval = 3600.0

    @Option(name: .long, help: "Seconds between refreshes (0.1 to 3600).")
    var interval: Double = 1

    @Option(name: .long, help: "Only this thread: its tid, ident (0x…) or name.")
    var thread: String?

    @Flag(name: .long, help: "Print one plain table after the first interval and exit.")
    var once = false

    @Option(name: .long, help: "Sort by own samples (innermost frame) or total (anywhere on the stack); keys 1 and 2 switch.")
    var sort: FunctionTable.SortKey = .own

    @Flag(name: .customLong("async"), help: "Count time in the coroutines of the asyncio tasks awaiting the running task too (3.8+); with --idle, waiting tasks too.")
    var asyncTasks = false

    @OptionGroup var native: NativeFlags

    @OptionGroup var sampling: SamplingOptions

    @OptionGroup var target: TargetOptions

    func validate() throws {
        if !(interval >= 0.1 && interval <= TopCommand.longestInterval) {
            throw ValidationError("--interval must be between 0.1 and \(Int(TopCommand.longestInterval)) seconds (an hour)")
        }
        try native.refuse(gil: sampling.gil, asyncTasks: asyncTasks)
    }

    func run() throws {
        InterruptFlag.install()
        let acquired = target.acquire()
        var current = acquired.target
        var sampled: Set<Int32> = []
        var stoppedByPytap = false
        while true {
            sampled.insert(current.pid)
            let chosen: ChosenSampler
            var options = sampling.samplerOptions
            options.asyncTasks = asyncTasks
            do {
                chosen = try ChosenSampler(target: current, options: options, native: native.options)
            } catch {
                Failure.from(error, pid: current.pid).exit()
            }
            let view = TopView(target: current, sampler: chosen.sampler, rate: options.rate, capture: chosen.shortCaptureMethod,
                               interval: interval, threadFilter: thread, interactive: !once && Terminal.standardOutputIsTTY, once: once,
                               sortKey: sort)
            let stop = view.run()
            if let error = view.outputError, error.errno != EPIPE {
                _ = acquired.finish(stoppedByPytap: true)
                Failure(message: error.message, status: .failure).exit()
            }
            stoppedByPytap = view.stoppedByPytap
            // Launch mode: follow the next Python process the command runs.
            guard stop == .targetExited, let next = acquired.nextPython(after: sampled, deadline: nil) else { break }
            current = next
        }
        let status = acquired.finish(stoppedByPytap: stoppedByPytap)
        if status != 0 { throw ExitCode(status) }
    }
}
