/// The file formats a recorded `Profile` can be written in.
public enum OutputFormat: String, CaseIterable, Sendable {
    /// Brendan Gregg's collapsed stacks (`flamegraph.pl`, inferno, speedscope read it).
    case folded
    /// A self-contained interactive flame graph.
    case svg
    /// speedscope's JSON file format, one sampled profile per thread.
    case speedscope
    /// pprof's gzip-compressed protocol buffer (`go tool pprof`, Pyroscope, Perfetto).
    case pprof
    /// The Firefox Profiler's processed profile: a track per thread, timed samples, markers.
    case gecko
    /// A self-contained HTML page of the hottest source files, lines shaded by samples.
    case heatmap

    /// The format a file name asks for, by its extension (case-insensitive):
    /// `.txt`/`.folded` folded, `.svg`, `.json`/`.speedscope.json` speedscope,
    /// `.pb.gz`/`.pprof` pprof, `.gecko.json` gecko, `.heat.html` heatmap; nil for anything
    /// else.
    public static func infer(fromPath path: String) -> OutputFormat? {
        let name = path.lowercased()
        let suffixes: [(String, OutputFormat)] = [
            (".gecko.json", .gecko),
            (".speedscope.json", .speedscope), (".json", .speedscope),
            (".heat.html", .heatmap),
            (".pb.gz", .pprof), (".pprof", .pprof),
            (".svg", .svg),
            (".folded", .folded), (".txt", .folded),
        ]
        for (suffix, format) in suffixes where name.hasSuffix(suffix) && name.count > suffix.count {
            return format
        }
        return nil
    }

    /// The extension files of this format usually get, without the leading dot.
    public var fileExtension: String {
        switch self {
        case .folded: return "txt"
        case .svg: return "svg"
        case .speedscope: return "speedscope.json"
        case .pprof: return "pb.gz"
        case .gecko: return "gecko.json"
        case .heatmap: return "heat.html"
        }
    }

    /// Whether the output is binary (not for a terminal).
    public var isBinary: Bool { self == .pprof }

    /// Whether rendering reads the profiled program's source files.
    public var readsSources: Bool { self == .heatmap }

    /// Writes `profile` in this format: gzip-compressed protobuf for pprof, UTF-8 text for
    /// the others. `sources` gives a source file's text by the path the target used (the
    /// heat map's; nil when unreadable).
    public func render(_ profile: Profile, sources: (String) -> String? = { _ in nil }) throws -> [UInt8] {
        switch self {
        case .folded:
            return Array(FoldedWriter().render(profile).utf8)
        case .svg:
            return Array(FlameGraphWriter().render(profile).utf8)
        case .speedscope:
            return Array(try SpeedscopeWriter().render(profile).utf8)
        case .pprof:
            return try PprofWriter().render(profile)
        case .gecko:
            return Array(try GeckoWriter().render(profile).utf8)
        case .heatmap:
            return Array(HeatmapWriter().render(profile, sources: sources).utf8)
        }
    }
}
