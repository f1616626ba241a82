import ArgumentParser
import PyTap

struct PyCallGraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "py-callgraph",
        abstract: "Trace every Python call and return inside the next N calls of a Python function, with µs times.",
        discussion: """
            Python 2.7 and 3.6–3.10, where every Python call (and every resume of a generator) runs \
            the eval function once: a uprobe on its entry reads the frame's code object, a uretprobe \
            sees its return. Names are `qualname (file:line)`. Needs root, or CAP_BPF and CAP_PERFMON. \
            3.11+ is not supported yet (Python-to-Python calls no longer go through a C call there).

            Examples:
              pytap py-callgraph -x 1234 -t handle_request -n 2
              pytap py-callgraph -x 1234 -t Parser.parse --json
            """
    )

    @Option(name: [.customLong("pid"), .customShort("x")], parsing: .unconditional, help: "Process ID of the Python process.")
    var pid: Int32

    @Option(name: [.customLong("trigger"), .customShort("t")], help: ArgumentHelp("The Python function (name or qualname) whose calls are traced.", valueName: "function"))
    var trigger: String

    @Option(name: [.customLong("count"), .customShort("n")], help: "Calls of the trigger to trace.")
    var count = 1

    @OptionGroup var recording: CallGraphRecordingOptions

    func validate() throws {
        try validateProcessID(pid)
        if count < 1 { throw ValidationError("--count must be at least 1") }
        if trigger.isEmpty { throw ValidationError("--trigger needs a function name") }
    }

    func run() throws {
        InterruptFlag.install()
        let outputFile = try recording.output.map(OutputFile.prepare)
        let tracer: PyCallGraphTracer
        let evalFunction: String
        do {
            var options = PyCallGraphOptions(trigger: trigger)
            options.count = count
            options.maxEvents = recording.maxEvents
            tracer = try PyCallGraphTracer(target: try PythonTarget(pid: pid), options: options)
            evalFunction = try tracer.attach()
        } catch let error as PyCallGraphError {
            Failure(message: error.description, status: .notPython).exit()
        } catch {
            Failure.from(error, pid: pid).exit()
        }
        writeStandardError("pytap: probing \(evalFunction); waiting for \(count) call\(count == 1 ? "" : "s") of \(trigger) (Ctrl-C to stop)\n")
        let summary = CallGraphOutput(format: recording.effectiveFormat, file: outputFile, pid: pid).run { shouldStop, onInvocation in
            try tracer.run(shouldStop: shouldStop, onInvocation: onInvocation)
        }
        CallGraphOutput.report(summary, trigger: trigger, pid: pid)
    }
}
