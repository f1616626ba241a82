import ArgumentParser
import PyTap

struct PyCallGraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "py-callgraph",
        abstract: "Trace every Python call and return inside the next N calls of a Python function (or of every function for a while), with µs times.",
        discussion: """
            Python 2.7 and 3.6–3.10: every Python call (and every resume of a generator) runs the \
            eval function once: a uprobe on its entry reads the frame's code object, a uretprobe sees \
            its return. Python 3.11–3.15, where Python calls no longer go through a C call: uprobes on \
            the bytecode handlers that start a frame (RESUME and its variants) and leave it (returns, \
            yields), found through the interpreter's opcode_targets table (a local symbol: a stripped \
            interpreter needs its debug file), and on PyTraceBack_Here (an exception left frames). \
            Each hit reads the thread's current frame and its callers, so frames an exception carried \
            away are closed at the next hit on that thread (with its time). A generator's resume and \
            yield are a call and a return, as sys.setprofile shows them. Names are \
            `qualname (file:line)`. Needs root, or CAP_BPF and CAP_PERFMON.

            Without --trigger, every call on every thread is traced for --duration seconds (or \
            --count calls): each outermost call seen on a thread is one block.

            Examples:
              pytap py-callgraph -x 1234 -t handle_request -n 2
              pytap py-callgraph -x 1234 -t Parser.parse --json
              pytap py-callgraph -x 1234 --duration 0.5
            """
    )

    @Option(name: [.customLong("pid"), .customShort("x")], parsing: .unconditional, help: "Process ID of the Python process.")
    var pid: Int32

    @Option(name: [.customLong("trigger"), .customShort("t")], help: ArgumentHelp("The Python function (name or qualname) whose calls are traced; without it, every function.", valueName: "function"))
    var trigger: String?

    @Option(name: [.customLong("count"), .customShort("n")], help: "Calls of the trigger to trace (default 1); without --trigger, calls of any function to record.")
    var count: Int?

    @Option(name: .long, help: ArgumentHelp("Stop after this many seconds.", valueName: "seconds"))
    var duration: Double?

    @OptionGroup var recording: CallGraphRecordingOptions

    func validate() throws {
        try validateCallGraphTarget(pid: pid, count: count ?? 1, trigger: trigger ?? "-")
        if let duration, !(duration > 0 && duration <= 1e6) { throw ValidationError("--duration must be a positive number of seconds") }
        if trigger == nil && count == nil && duration == nil { throw ValidationError("without --trigger, give --duration or --count") }
    }

    func run() throws {
        InterruptFlag.install()
        let outputFile = try recording.output.map(OutputFile.prepare)
        let tracer: PyCallGraphTracer
        let attachment: PyCallGraphAttachment
        do {
            var options = PyCallGraphOptions(trigger: trigger)
            options.count = count
            options.duration = duration
            options.maxEvents = recording.maxEvents
            tracer = try PyCallGraphTracer(target: try PythonTarget(pid: pid), options: options)
            attachment = try tracer.attach()
        } catch let error as PyCallGraphError {
            Failure(message: error.description, status: .notPython).exit()
        } catch {
            Failure.from(error, pid: pid).exit()
        }
        let what: String
        if let trigger {
            let calls = count ?? 1
            what = "waiting for \(calls) call\(calls == 1 ? "" : "s") of \(trigger)"
        } else {
            what = "tracing every Python call" + (duration.map { " for \($0) s" } ?? "") + (count.map { " (at most \($0) calls)" } ?? "")
        }
        writeStandardError("pytap: probing \(attachment.probed) (\(formatSeconds(attachment.seconds))); \(what) (Ctrl-C to stop)\n")
        let summary = CallGraphOutput(format: recording.effectiveFormat, file: outputFile, pid: pid).run { shouldStop, onInvocation in
            try tracer.run(shouldStop: shouldStop, onInvocation: onInvocation)
        }
        CallGraphOutput.report(summary, trigger: trigger, pid: pid)
    }
}
