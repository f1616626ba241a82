import ArgumentParser
import PyTap

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Live view of the functions using the most CPU in a Python program.",
        discussion: """
            Samples like `pytap sample` and shows, for each function, its share of samples as the \
            innermost frame (Own) and anywhere on the stack (Total), over the last interval and \
            since the start (OwnTime/TotalTime, in seconds of CPU).

            Keys: 1 sort by own, 2 sort by total, t cycle through threads (all, then one at a time), \
            p pause, q or Ctrl-C quit.

            Without a terminal (or with --once) it prints plain tables: one per interval, or a single \
            one after the first interval with --once.

            Examples:
              pytap top --pid 1234
              pytap top -x 1234 --once --interval 5
              pytap top -- python3 app.py
            """
    )

    @Option(name: .long, help: "Seconds between refreshes.")
    var interval: Double = 1

    @Option(name: .long, help: "Only this thread: its tid, ident (0x…) or name.")
    var thread: String?

    @Flag(name: .long, help: "Print one plain table after the first interval and exit.")
    var once = false

    @OptionGroup var sampling: SamplingOptions

    @OptionGroup var target: TargetOptions

    func validate() throws {
        if !(interval >= 0.1) { throw ValidationError("--interval must be at least 0.1 seconds") }
    }

    func run() throws {
        InterruptFlag.install()
        let acquired = target.acquire()
        let options = sampling.samplerOptions
        let sampler: Sampler
        do {
            sampler = try Sampler(target: acquired.target, options: options)
        } catch {
            Failure.from(error, pid: acquired.target.pid).exit()
        }
        let view = TopView(target: acquired.target, sampler: sampler, interval: interval, threadFilter: thread,
                           interactive: !once && Terminal.standardOutputIsTTY, once: once)
        view.run()
        if let child = acquired.child { child.wait() }
    }
}
