import ArgumentParser
import Glibc
import PyTap

/// How a call graph is written.
enum CallGraphFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, chrome
}

struct CallGraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callgraph",
        abstract: "Trace every C function call and return inside the next N calls of a trigger function, with µs times.",
        discussion: """
            Places uprobes and uretprobes on the C functions of the interpreter's object file \
            (libpython, or the executable of a static build; local functions too, from .symtab or \
            the debug file), records only on the thread inside the trigger's extent, and detaches \
            after COUNT calls of the trigger. Needs root, or CAP_BPF and CAP_PERFMON. While the \
            probes are on, every probed function costs the target a few µs per call on every thread: \
            narrow the set with --functions. The probes go with pytap, however it ends.

            Text output, per call of the trigger (µs since its entry, indented by depth):
                 0 python(1234): -> builtin_sorted
                 3 python(1234):  -> PySequence_List
                 9 python(1234):  <- PySequence_List

            Examples:
              pytap callgraph -x 1234 -t builtin_sorted -n 3
              pytap callgraph -x 1234 -t list_sort_impl --functions '*sort*'
              pytap callgraph -x 1234 -t encoder_call -d _json --format chrome -o trace.json
            """
    )

    @Option(name: [.customLong("pid"), .customShort("x")], parsing: .unconditional, help: "Process ID of the Python process.")
    var pid: Int32

    @Option(name: [.customLong("trigger"), .customShort("t")], help: ArgumentHelp("The C function whose calls are traced.", valueName: "function"))
    var trigger: String

    @Option(name: [.customLong("count"), .customShort("n")], help: "Calls of the trigger to trace.")
    var count = 1

    @Option(name: [.customLong("module"), .customShort("d")], help: ArgumentHelp("Probe this object file instead of the interpreter's (a path, or part of a mapped file's name, e.g. _json).", valueName: "lib"))
    var module: String?

    @Option(name: .long, help: ArgumentHelp("Only probe functions whose name matches this glob (the trigger always is).", valueName: "glob"))
    var functions: String?

    @OptionGroup var recording: CallGraphRecordingOptions

    func validate() throws {
        try validateCallGraphTarget(pid: pid, count: count, trigger: trigger)
    }

    func run() throws {
        InterruptFlag.install()
        let outputFile = try recording.output.map(OutputFile.prepare)
        let tracer: CallGraphTracer
        let attachment: CallGraphAttachment
        do {
            let target = try PythonTarget(pid: pid)
            var options = CallGraphOptions(trigger: trigger)
            options.count = count
            options.module = module
            options.functions = functions
            options.maxEvents = recording.maxEvents
            tracer = try CallGraphTracer(target: target, options: options)
            attachment = try tracer.attach()
        } catch {
            Failure.from(error, pid: pid).exit()
        }
        let kind = attachment.multiLinks ? "\(attachment.links) multi-uprobe links" : "\(attachment.links) uprobes"
        writeStandardError("pytap: probing \(attachment.functions) functions of \(attachment.path) (\(kind), \(formatSeconds(attachment.seconds)))"
                           + (attachment.refused > 0 ? "; the kernel refused \(attachment.refused)" : "")
                           + "; waiting for \(count) call\(count == 1 ? "" : "s") of \(trigger) (Ctrl-C to stop)\n")
        let summary = CallGraphOutput(format: recording.effectiveFormat, file: outputFile, pid: pid).run { shouldStop, onInvocation in
            try tracer.run(shouldStop: shouldStop, onInvocation: onInvocation)
        }
        CallGraphOutput.report(summary, trigger: trigger, pid: pid)
    }
}

/// The checks `callgraph` and `py-callgraph` share.
func validateCallGraphTarget(pid: Int32, count: Int, trigger: String) throws {
    try validateProcessID(pid)
    if count < 1 { throw ValidationError("--count must be at least 1") }
    if trigger.isEmpty { throw ValidationError("--trigger needs a function name") }
}

/// What `callgraph` and `py-callgraph` record at most, and how they write it.
struct CallGraphRecordingOptions: ParsableArguments {
    @Option(name: .customLong("max-events"), help: "Stop recording after this many calls and returns (the rest are counted as dropped).")
    var maxEvents = 1_000_000

    @Option(name: .long, help: "text (default), json (each call's tree) or chrome (Chrome trace / Perfetto JSON).")
    var format: CallGraphFormat?

    @Flag(name: .long, help: "Same as --format json.")
    var json = false

    @Option(name: [.customLong("output"), .customShort("o")], help: ArgumentHelp("Write to this file (a .json file defaults to --format chrome).", valueName: "file"))
    var output: String?

    func validate() throws {
        if maxEvents < 1 { throw ValidationError("--max-events must be at least 1") }
        if json, let format, format != .json { throw ValidationError("--json and --format \(format.rawValue) disagree") }
    }

    var effectiveFormat: CallGraphFormat {
        if json { return .json }
        if let format { return format }
        if let output, output.hasSuffix(".json") { return .chrome }
        return .text
    }
}

/// How `callgraph` and `py-callgraph` write what their tracer hands them: text streamed
/// call by call to stdout, everything else at the end.
struct CallGraphOutput {
    var format: CallGraphFormat
    var file: OutputFile?
    var pid: Int32

    func run(_ trace: (_ shouldStop: () -> Bool, _ onInvocation: (CallInvocation) -> Void) throws -> CallGraphSummary) -> CallGraphSummary {
        var invocations = [CallInvocation]()
        var first = true
        let summary: CallGraphSummary
        do {
            summary = try trace({ InterruptFlag.isSet }) { invocation in
                if format == .text && file == nil {
                    // Streamed: each call as soon as it is complete.
                    try? writeStandardOutput((first ? "" : "\n") + CallGraphWriter.text(invocation))
                    first = false
                } else {
                    invocations.append(invocation)
                }
            }
        } catch {
            Failure.from(error, pid: pid).exit()
        }
        switch format {
        case .text:
            if file != nil { emit(invocations.map(CallGraphWriter.text).joined(separator: "\n")) }
        case .json: emit(CallGraphWriter.json(invocations))
        case .chrome: emit(CallGraphWriter.chromeTrace(invocations, pid: pid))
        }
        return summary
    }

    /// The closing line on stderr; exits 5 when the process exited before any call was traced.
    /// `trigger` nil: every function was traced, a block per outermost call.
    static func report(_ summary: CallGraphSummary, trigger: String?, pid: Int32) {
        let calls = "\(summary.invocations) \(trigger == nil ? "outermost " : "")call\(summary.invocations == 1 ? "" : "s")"
        var note = "pytap: \(calls)\(trigger.map { " of \($0)" } ?? "") traced, \(summary.events) events"
        if summary.dropped > 0 { note += ", \(summary.dropped) dropped (--max-events or a full ring buffer)" }
        if summary.targetExited { note += "; process \(pid) exited" }
        writeStandardError(note + "\n")
        if summary.invocations == 0 && summary.targetExited { Failure.exited(pid).exit() }
    }

    private func emit(_ text: String) {
        do {
            if let file { try file.write(Array(text.utf8)) } else { try writeStandardOutput(text) }
        } catch {
            Failure.from(error, pid: pid).exit()
        }
    }
}

func formatSeconds(_ seconds: Double) -> String {
    seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : "\(Double(Int(seconds * 100)) / 100) s"
}
