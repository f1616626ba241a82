/// A self-contained HTML page (no scripts, no external resources) of the source files with
/// the most samples, every line shaded by its samples:
///
/// - a file's samples are the samples with one of its lines anywhere on the stack (once a
///   sample); the `maximumFiles` files with most come first, each a table of its lines;
/// - "own" counts samples where the line was the innermost Python frame, "total" samples
///   where it was anywhere on the stack (once a sample);
/// - the code and own cells are shaded white to red by own samples, the total cell white to
///   blue by total samples, both relative to the hottest line of the page;
/// - a file whose source `sources` cannot give shows its sampled lines' numbers alone.
///
/// Row ids are `f<file index>-L<line>` (e.g. `#f0-L12` scrolls to line 12 of the first file).
public struct HeatmapWriter: Sendable {
    /// Files shown, most samples first.
    public var maximumFiles: Int
    /// Longer sources show only their sampled lines.
    public var maximumLines: Int

    public init(maximumFiles: Int = 10, maximumLines: Int = 20_000) {
        self.maximumFiles = maximumFiles
        self.maximumLines = maximumLines
    }

    /// Own and total samples of one line.
    public struct LineCounts: Equatable, Sendable {
        public var own = 0
        public var total = 0

        public init(own: Int = 0, total: Int = 0) {
            self.own = own
            self.total = total
        }
    }

    /// Samples of one source file, by line.
    public struct FileCounts: Sendable {
        public var path: String
        /// Samples with one of the file's lines on the stack.
        public var samples = 0
        public var lines: [Int: LineCounts] = [:]
    }

    /// Per-file line counts of the profile's Python frames, files with most samples first
    /// (ties by path).
    public static func files(_ profile: Profile) -> [FileCounts] {
        var byPath = [String: FileCounts]()
        var seenLines = Set<LineKey>()
        var seenFiles = Set<String>()
        for (stack, count) in profile.countsByStack() {
            let ids = profile.stacks[stack]
            seenLines.removeAll(keepingCapacity: true)
            seenFiles.removeAll(keepingCapacity: true)
            let leaf = ids.last { id in
                let frame = profile.frames[id]
                return frame.kind == .python && frame.file != nil && frame.line != nil
            }
            for id in ids {
                let frame = profile.frames[id]
                guard frame.kind == .python, let path = frame.file, let line = frame.line else { continue }
                var file = byPath[path] ?? FileCounts(path: path)
                if seenFiles.insert(path).inserted { file.samples += count }
                if seenLines.insert(LineKey(path: path, line: line)).inserted { file.lines[line, default: LineCounts()].total += count }
                if id == leaf { file.lines[line, default: LineCounts()].own += count }
                byPath[path] = file
            }
        }
        return byPath.values.sorted { $0.samples != $1.samples ? $0.samples > $1.samples : $0.path < $1.path }
    }

    private struct LineKey: Hashable {
        var path: String
        var line: Int
    }

    /// How dark a `fraction` (0...1) of the hottest line is shaded: none for none, and never
    /// so faint that a line with samples looks like one without.
    static func shade(_ fraction: Double) -> Double {
        fraction > 0 ? 0.05 + 0.95 * min(fraction, 1) : 0
    }

    /// White to red by `fraction` (0...1) of the hottest line.
    public static func ownColor(_ fraction: Double) -> String {
        let t = shade(fraction)
        return "rgb(255,\(Int((255 - 175 * t).rounded())),\(Int((255 - 195 * t).rounded())))"
    }

    /// White to blue by `fraction` (0...1) of the line with most total samples.
    public static func totalColor(_ fraction: Double) -> String {
        let t = shade(fraction)
        return "rgb(\(Int((255 - 155 * t).rounded())),\(Int((255 - 95 * t).rounded())),255)"
    }

    /// `sources` gives a file's text by the path the target used, nil when unreadable.
    public func render(_ profile: Profile, sources: (String) -> String?) -> String {
        let shown = Array(HeatmapWriter.files(profile).prefix(max(0, maximumFiles)))
        let maxOwn = shown.flatMap { $0.lines.values.map(\.own) }.max() ?? 0
        let maxTotal = shown.flatMap { $0.lines.values.map(\.total) }.max() ?? 0
        let metadata = profile.metadata
        let samples = profile.sampleCount
        let command = metadata.command.isEmpty ? "pid \(metadata.pid)" : metadata.command

        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>\(xmlEscape("pytap heat map: " + command))</title>
        <style>\(HeatmapWriter.style)</style>
        </head>
        <body>

        """
        html += "<h1>\(xmlEscape(command))</h1>\n"
        var facts = ["pid \(metadata.pid)"]
        if let version = metadata.pythonVersion { facts.append("Python \(version)") }
        facts.append("\(samples) sample" + (samples == 1 ? "" : "s") + " at \(metadata.rate) Hz")
        html += "<p class=\"facts\">\(xmlEscape(facts.joined(separator: ", "))). Lines shaded by own samples "
        html += "(innermost frame, red) and total samples (anywhere on the stack, blue).</p>\n"
        if shown.isEmpty {
            html += "<p class=\"empty\">No samples with a Python source line.</p>\n"
        } else {
            html += "<table class=\"files\"><tr><th>samples</th><th>file</th></tr>\n"
            for (index, file) in shown.enumerated() {
                html += "<tr><td class=\"n\">\(file.samples) (\(percent(file.samples, of: samples)))</td>"
                html += "<td><a href=\"#f\(index)\">\(xmlEscape(file.path))</a></td></tr>\n"
            }
            html += "</table>\n"
        }
        for (index, file) in shown.enumerated() {
            let text = sources(file.path)
            html += "<h2 id=\"f\(index)\">\(xmlEscape(file.path)) <span class=\"facts\">\(file.samples) samples, "
            html += percent(file.samples, of: samples) + "</span></h2>\n"
            let sourceLines = text.map(HeatmapWriter.splitLines) ?? []
            let numbers: [Int]
            if text == nil {
                html += "<p class=\"missing\">Source not available; sampled lines only.</p>\n"
                numbers = file.lines.keys.sorted()
            } else if sourceLines.count > maximumLines {
                html += "<p class=\"missing\">\(sourceLines.count) lines; sampled lines only.</p>\n"
                numbers = file.lines.keys.sorted()
            } else {
                let last = max(sourceLines.count, file.lines.keys.max() ?? 0)
                numbers = last > 0 ? Array(1...last) : []
            }
            html += "<table class=\"source\">\n<tr><th>line</th><th>own</th><th>total</th><th class=\"code\"></th></tr>\n"
            for number in numbers {
                let counts = file.lines[number] ?? LineCounts()
                let code = number <= sourceLines.count ? sourceLines[number - 1] : ""
                html += "<tr id=\"f\(index)-L\(number)\"><td class=\"n\">\(number)</td>"
                if counts.own > 0 {
                    let color = HeatmapWriter.ownColor(Double(counts.own) / Double(max(1, maxOwn)))
                    html += "<td class=\"n\" style=\"background:\(color)\">\(counts.own)</td>"
                } else {
                    html += "<td class=\"n\"></td>"
                }
                if counts.total > 0 {
                    html += "<td class=\"n\" style=\"background:\(HeatmapWriter.totalColor(Double(counts.total) / Double(max(1, maxTotal))))\">\(counts.total)</td>"
                } else {
                    html += "<td class=\"n\"></td>"
                }
                if counts.own > 0 {
                    html += "<td class=\"code\" style=\"background:\(HeatmapWriter.ownColor(Double(counts.own) / Double(max(1, maxOwn))))\">"
                } else {
                    html += "<td class=\"code\">"
                }
                html += xmlEscape(code) + "</td></tr>\n"
            }
            html += "</table>\n"
        }
        html += "<p class=\"facts\">Written by pytap \(PyTapVersion.string).</p>\n</body>\n</html>\n"
        return html
    }

    /// Lines of a source text (\n, \r\n or \r ends a line), tabs kept.
    static func splitLines(_ text: String) -> [String] {
        var lines = [String]()
        var current = ""
        var afterCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\n" && afterCR { afterCR = false; continue }
            afterCR = false
            if scalar == "\n" || scalar == "\r" {
                lines.append(current)
                current = ""
                afterCR = scalar == "\r"
            } else {
                current.unicodeScalars.append(scalar)
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    static let style = """

    body { font-family: Verdana, "DejaVu Sans", sans-serif; font-size: 13px; margin: 0 12px; background: #fff; color: #000; }
    h1 { font-size: 18px; margin: 12px 0 4px; }
    h2 { font-size: 15px; margin: 20px 0 4px; }
    .facts, .missing, .empty { color: #555; font-weight: normal; }
    table { border-collapse: collapse; }
    table.files td { padding: 1px 8px 1px 0; }
    table.source { width: 100%; font-family: "DejaVu Sans Mono", monospace; font-size: 12px; }
    table.source th { text-align: right; color: #555; font-weight: normal; padding: 0 6px; }
    td.n { text-align: right; color: #555; padding: 0 6px; white-space: nowrap; width: 1%; }
    td.code { white-space: pre; padding: 0 6px; width: 100%; }

    """
}

/// "12.3%" of `part` in `whole`.
fileprivate func percent(_ part: Int, of whole: Int) -> String {
    guard whole > 0 else { return "0%" }
    let tenths = Int((Double(part) * 1000 / Double(whole)).rounded())
    return "\(tenths / 10).\(tenths % 10)%"
}
