import ArgumentParser
import PyTap

extension OutputFormat: ExpressibleByArgument {}

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Record a CPU profile of a running Python program (or of a command pytap starts).",
        discussion: """
            Samples the Python stack of every thread RATE times a second by reading the \
            process's memory; the process is never stopped. By default only threads on a CPU are \
            sampled, so the profile shows where CPU time goes.

            Output: folded stacks on stdout (for flamegraph.pl, inferno, speedscope), or a file \
            whose format follows its extension: .svg interactive flame graph, .json speedscope, \
            .pb.gz pprof (Pyroscope, Parca, Grafana), .gecko.json Firefox Profiler (a track per \
            thread, CPU and GIL markers), .heat.html source lines shaded by samples, \
            .txt/.folded folded stacks.

            Ctrl-C, the end of --duration or the target's exit stop the recording; what was \
            gathered is written either way.

            Examples:
              pytap sample -x 1234 -t 10 | flamegraph.pl > profile.svg
              pytap sample --pid 1234 --duration 30 -o profile.svg
              pytap sample --rate 1000 -o profile.speedscope.json -- python3 app.py
              pytap sample -x 1234 --subprocesses --threads -o workers.svg
            """
    )

    @Option(name: [.customLong("duration"), .customShort("t")], help: "Seconds to record (default: until Ctrl-C or the program exits).")
    var duration: Double?

    @Option(name: [.customShort("o"), .customLong("output")], help: "File to write (format from its extension); default stdout.")
    var output: String?

    @Option(name: [.customShort("f"), .customLong("format")], help: "Output format: folded, svg, speedscope, pprof, gecko or heatmap (overrides the extension).")
    var format: OutputFormat?

    @Flag(name: .long, help: "Root each stack in a frame naming its thread (name and tid).")
    var threads = false

    @Flag(name: .long, help: "Also sample child processes (e.g. multiprocessing workers); stacks are rooted in their process.")
    var subprocesses = false

    @Flag(name: .long, help: "Aggregate by function (its first line) instead of by line.")
    var function = false

    @Flag(name: .customLong("async"), help: "Continue each stack through the asyncio tasks awaiting the running task, each marked by a 'task NAME' frame (3.8+); with --idle, waiting tasks too.")
    var asyncTasks = false

    @OptionGroup var native: NativeFlags

    @OptionGroup var sampling: SamplingOptions

    @OptionGroup var target: TargetOptions

    func validate() throws {
        try native.refuse(gil: sampling.gil, asyncTasks: asyncTasks, subprocesses: subprocesses)
        if let duration, !(duration > 0) { throw ValidationError("--duration must be a positive number of seconds") }
        if format == nil, let output, OutputFormat.infer(fromPath: output) == nil {
            throw ValidationError("cannot tell the format of '\(output)' from its extension; add --format \(OutputFormat.allCases.map(\.rawValue).joined(separator: "|"))")
        }
    }

    func run() throws {
        InterruptFlag.install()
        // Checked before the target is touched: a bad -o fails now, not after --duration.
        let destination: OutputFile?
        do {
            destination = try output.map(OutputFile.prepare)
        } catch {
            Failure.from(error, pid: nil).exit()
        }
        let acquired = target.acquire()
        var options = sampling.samplerOptions
        options.threadRoots = threads
        options.followChildren = subprocesses
        options.byFunction = function
        options.asyncTasks = asyncTasks
        let chosen = format ?? output.flatMap(OutputFormat.infer(fromPath:)) ?? .folded
        options.recordsThreadStates = chosen == .gecko
        // Opened now, while the target surely runs: its sources stay readable if it exits.
        let files = chosen.readsSources ? ProcessFileView(pid: acquired.target.pid) : nil
        let recording = Recording(options: options, duration: duration, showProgress: Terminal.standardErrorIsTTY, native: native.options)
        let profile: Profile
        do {
            profile = try recording.record(first: acquired.target, commandLine: target.command.isEmpty ? nil : target.command,
                                           next: acquired.nextPython(after:deadline:))
        } catch {
            Failure.from(error, pid: acquired.target.pid).exit()
        }
        do {
            let bytes = try chosen.render(profile) { path in files?.contents(of: path).map { String(decoding: $0, as: UTF8.self) } }
            if let destination {
                try destination.write(bytes)
            } else {
                try writeStandardOutput(bytes)
            }
        } catch {
            Failure.from(error, pid: nil).exit()
        }
        writeStandardError(recording.summary(profile: profile))
        if let output { writeStandardError("pytap: wrote \(output.escapingControlCharacters) (\(chosen.rawValue))\n") }
        let status = acquired.finish(stoppedByPytap: recording.reachedDuration)
        if status != 0 { throw ExitCode(status) }
    }
}
