import ArgumentParser
import PyTap

/// Where `memtrace` writes besides its report: the survivors as a profile in bytes, in one
/// of the formats `sample` writes (the same writers, weight = surviving bytes).
struct MemtraceOutputOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output")], help: "Also write the survivors, weighted by bytes, to this file (format from its extension: .txt/.folded, .svg, .json/.speedscope.json, .pb.gz); the report still goes to stdout.")
    var output: String?

    @Option(name: [.customShort("f"), .customLong("format")], help: "Format of -o (overrides the extension), or without -o the format written to stdout instead of the report: folded, svg, speedscope or pprof.")
    var format: OutputFormat?

    static let formats: [OutputFormat] = [.folded, .svg, .speedscope, .pprof]

    /// The format chosen, nil for the report alone.
    var chosenFormat: OutputFormat? { format ?? output.flatMap(OutputFormat.infer(fromPath:)) }

    func validate(json: Bool) throws {
        let names = MemtraceOutputOptions.formats.map(\.rawValue).joined(separator: "|")
        if format == nil, let output, OutputFormat.infer(fromPath: output) == nil {
            throw ValidationError("cannot tell the format of '\(output)' from its extension; add --format \(names)")
        }
        if let chosen = chosenFormat, !MemtraceOutputOptions.formats.contains(chosen) {
            throw ValidationError("memtrace writes \(names), not \(chosen.rawValue)")
        }
        if json && format != nil && output == nil {
            throw ValidationError("--json and --format both write stdout; add -o FILE for the --format output")
        }
    }

    /// Checked before tracing, so a bad -o fails at once rather than after --duration.
    func prepare() throws -> OutputFile? { try output.map(OutputFile.prepare) }

    /// Writes the report (text, or JSON) and the profile where they go; throws `OutputError`.
    func write(_ report: MemtraceReport, json: Bool, limit: Int, to destination: OutputFile?, target: PythonTarget, startTime: Double) throws {
        let reportText = json ? report.json() : report.text(limit: limit)
        guard let chosen = chosenFormat else {
            try writeStandardOutput(reportText)
            return
        }
        let command = target.source.commandLine().joined(separator: " ")
        let profile = report.profile(pid: target.pid, command: command, pythonVersion: target.version.description, startTime: startTime)
        let bytes = try chosen.render(profile)
        if let destination {
            try writeStandardOutput(reportText)
            try destination.write(bytes)
            writeStandardError("pytap: wrote \(destination.path.escapingControlCharacters) (\(chosen.rawValue), weighted by surviving bytes)\n")
        } else {
            try writeStandardOutput(bytes)
        }
    }
}
