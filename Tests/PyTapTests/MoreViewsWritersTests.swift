import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import PyTap

/// The Firefox Profiler (gecko), heat map and differential flame graph writers.
@Suite struct MoreViewsWritersTests {
    /// The writer fixture with thread states: the main thread on a CPU holding the GIL for
    /// its first 6 samples, then off a CPU without it; the worker's state unknown.
    static func profileWithStates() -> Profile {
        var profile = Profile(metadata: ProfileMetadata(
            command: WriterFixture.command, pid: 4242, pythonVersion: "3.12.1", rate: 100,
            startTime: 1_700_000_000.25, duration: 0.1))
        for (index, stack) in WriterFixture.mainSamples.enumerated() {
            let state: SampleState = index < 6 ? [.onCPU, .holdsGIL] : [.offCPU, .withoutGIL]
            profile.add(rootFirst: stack, thread: WriterFixture.mainThread, time: UInt64(index) * 10_000_000, state: state)
        }
        for (index, stack) in WriterFixture.workerSamples.enumerated() {
            profile.add(rootFirst: stack, thread: WriterFixture.workerThread, time: UInt64(index) * 10_000_000 + 5_000_000)
        }
        return profile
    }

    // MARK: Gecko

    @Test func geckoWriterMatchesGolden() throws {
        try Golden.check("profile.gecko.json", try GeckoWriter().render(MoreViewsWritersTests.profileWithStates()))
    }

    @Test func geckoWriterOutputFollowsProcessedFormat() throws {
        let text = try GeckoWriter().render(MoreViewsWritersTests.profileWithStates())
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let meta = try #require(json["meta"] as? [String: Any])
        #expect(meta["preprocessedProfileVersion"] as? Int == 57)
        #expect(meta["interval"] as? Double == 10)
        #expect(meta["startTime"] as? Double == 1_700_000_000_250)
        let categories = try #require(meta["categories"] as? [[String: Any]])
        #expect(categories.first?["color"] as? String == "grey")
        #expect(categories.allSatisfy { ($0["subcategories"] as? [String])?.first == "Other" })
        let strings = try #require((json["shared"] as? [String: Any])?["stringArray"] as? [String])

        let threads = try #require(json["threads"] as? [[String: Any]])
        #expect(threads.map { $0["name"] as? String } == ["MainThread", "Worker-1"])
        #expect(threads.map { $0["tid"] as? Int } == [4242, 4250])
        #expect(threads.allSatisfy { $0["pid"] as? String == "4242" })
        let expectedStacks = [WriterFixture.mainSamples, WriterFixture.workerSamples]
        for (thread, expected) in zip(threads, expectedStacks) {
            let stackTable = try #require(thread["stackTable"] as? [String: Any])
            let frameTable = try #require(thread["frameTable"] as? [String: Any])
            let funcTable = try #require(thread["funcTable"] as? [String: Any])
            // Every column of a table is as long as its `length`.
            for table in [stackTable, frameTable, funcTable, thread["samples"], thread["markers"], thread["resourceTable"]] {
                let table = try #require(table as? [String: Any])
                let length = try #require(table["length"] as? Int)
                for (key, value) in table {
                    if let column = value as? [Any] { #expect(column.count == length, "\(key)") }
                }
            }
            let prefix = try #require(stackTable["prefix"] as? [Any])
            let frame = try #require(stackTable["frame"] as? [Int])
            let frameFunc = try #require(frameTable["func"] as? [Int])
            let frameLine = try #require(frameTable["line"] as? [Any])
            let funcName = try #require(funcTable["name"] as? [Int])
            let funcFile = try #require(funcTable["fileName"] as? [Any])
            // A stack's prefix comes before it; walking prefixes gives the sampled stack.
            for (index, parent) in prefix.enumerated() {
                if let parent = parent as? Int { #expect(parent < index) }
            }
            func labels(_ stack: Int) -> [String] {
                var out = [String]()
                var current: Int? = stack
                while let index = current {
                    let f = frame[index]
                    let name = strings[funcName[frameFunc[f]]]
                    let file = (funcFile[frameFunc[f]] as? Int).map { strings[$0] }
                    let line = frameLine[f] as? Int
                    out.append("\(name)|\(file ?? "-")|\(line.map(String.init) ?? "-")")
                    current = prefix[index] as? Int
                }
                return out.reversed()
            }
            let samples = try #require(thread["samples"] as? [String: Any])
            let stacks = try #require(samples["stack"] as? [Int])
            #expect(stacks.map(labels) == expected.map { $0.map { "\($0.functionName)|\($0.file ?? "-")|\($0.line.map(String.init) ?? "-")" } })
            let times = try #require(samples["time"] as? [Double])
            let offset = thread["name"] as? String == "Worker-1" ? 5.0 : 0.0
            #expect(times == expected.indices.map { Double($0) * 10 + offset })
        }

        // The main thread's states as markers: on CPU / holds GIL for samples 0-5, then off.
        let markers = try #require(threads[0]["markers"] as? [String: Any])
        let names = try #require(markers["name"] as? [Int]).map { strings[$0] }
        let starts = try #require(markers["startTime"] as? [Double])
        let ends = try #require(markers["endTime"] as? [Double])
        #expect(names == ["On CPU", "Off CPU", "Holds GIL", "Without GIL"])
        #expect(starts == [0, 60, 0, 60])
        #expect(ends == [60, 100, 60, 100])
        #expect((markers["phase"] as? [Int]) == [1, 1, 1, 1])
        #expect((threads[1]["markers"] as? [String: Any])?["length"] as? Int == 0)
    }

    @Test func geckoMarkersEndAtGapsAndStateChanges() {
        let ms: UInt64 = 1_000_000
        let timeline: [(stack: UInt32, state: SampleState, time: UInt64)] = [
            (0, .onCPU, 0), (0, .onCPU, 10 * ms), (0, .offCPU, 20 * ms),
            (0, .onCPU, 100 * ms), (0, [], 110 * ms), (0, .onCPU, 120 * ms),
        ]
        let markers = GeckoWriter.markers(timeline, interval: 10 * ms)
        // A change ends a run at the next sample; a gap (80 ms > 3 intervals) or an unknown
        // state ends it one interval after its last sample.
        let names: [String] = markers.map { $0.name }
        let starts: [UInt64] = markers.map { $0.start }
        let ends: [UInt64] = markers.map { $0.end }
        #expect(names == ["On CPU", "Off CPU", "On CPU", "On CPU"])
        #expect(starts == [0, 20 * ms, 100 * ms, 120 * ms])
        #expect(ends == [20 * ms, 30 * ms, 110 * ms, 130 * ms])
    }

    @Test func geckoWriterRejectsZeroRate() {
        #expect(throws: ReportError.invalidRate(0)) { try GeckoWriter().render(WriterFixture.profile(rate: 0)) }
    }

    // MARK: Heat map

    static let appSource = (1...35).map { "line \($0) of <app> & co" }.joined(separator: "\n") + "\n"

    @Test func heatmapCountsOwnAndTotalSamplesPerLine() throws {
        let files = HeatmapWriter.files(WriterFixture.profile())
        // app.py is on all 16 stacks; lib/calc.py on A (6), C (2), D (4).
        #expect(files.map(\.path) == ["app.py", "lib/calc.py", "lib/tëst \"quoted\".py"])
        #expect(files.map(\.samples) == [16, 12, 3])
        let calc = files[1].lines[42]
        #expect(calc == HeatmapWriter.LineCounts(own: 12, total: 12))  // C's innermost Python frame
        #expect(files[0].lines[20] == HeatmapWriter.LineCounts(own: 0, total: 11))
        #expect(files[0].lines[30] == HeatmapWriter.LineCounts(own: 1, total: 5))  // E: worker under a native frame
    }

    @Test func heatmapShadesLinesAndShowsLineNumbersWithoutSource() throws {
        let html = HeatmapWriter().render(WriterFixture.profile()) { path in
            path == "app.py" ? MoreViewsWritersTests.appSource : nil
        }
        try Golden.check("profile.heat.html", html)
        // app.py: every line of its source; calc.py:42 (12 own and total samples, the most)
        // the reddest and bluest.
        #expect(html.contains("<tr id=\"f0-L1\"><td class=\"n\">1</td><td class=\"n\"></td><td class=\"n\"></td><td class=\"code\">line 1 of &lt;app&gt; &amp; co</td></tr>"))
        #expect(html.contains("<tr id=\"f0-L35\">"))
        #expect(html.contains("<tr id=\"f0-L20\"><td class=\"n\">20</td><td class=\"n\"></td><td class=\"n\" style=\"background:\(HeatmapWriter.totalColor(11.0 / 12))\">11</td>"))
        #expect(html.contains("<tr id=\"f1-L42\"><td class=\"n\">42</td><td class=\"n\" style=\"background:\(HeatmapWriter.ownColor(1))\">12</td><td class=\"n\" style=\"background:\(HeatmapWriter.totalColor(1))\">12</td>"))
        #expect(html.contains("style=\"background:\(HeatmapWriter.ownColor(1))\"></td></tr>"))  // the code cell, no source
        // lib/calc.py has no source: only its sampled line, and a note.
        #expect(!html.contains("id=\"f1-L1\""))
        #expect(html.components(separatedBy: "Source not available").count == 3)
        #expect(!html.contains("<script"))
        // Well-formed enough for an XML parser (no stray markup from labels or sources).
        let xml = html.replacingOccurrences(of: "<!DOCTYPE html>", with: "").replacingOccurrences(of: "<meta charset=\"utf-8\">", with: "")
        #expect(XMLParser(data: Data(xml.utf8)).parse())
    }

    @Test func heatmapColorsRampFromWhite() {
        #expect(HeatmapWriter.ownColor(0) == "rgb(255,255,255)")
        #expect(HeatmapWriter.ownColor(1) == "rgb(255,80,60)")
        #expect(HeatmapWriter.ownColor(7) == HeatmapWriter.ownColor(1))
        #expect(HeatmapWriter.ownColor(0.0001) == "rgb(255,246,245)")  // a sample shows
        #expect(HeatmapWriter.totalColor(1) == "rgb(100,160,255)")
    }

    // MARK: Differential flame graph

    @Test func foldedStacksParseAndAddUp() throws {
        let stacks = try FoldedStacks(parsing: "main;a 3\n\nmain;b (x.py:1) 2\r\nmain;a 4\n")
        #expect(stacks.total == 9)
        #expect(stacks.rows.map(\.frames) == [["main", "a"], ["main", "b (x.py:1)"]])
        #expect(stacks.rows.map(\.count) == [7, 2])
        #expect(stacks.samplesByPath()[["main"]] == 9)
        #expect(throws: FoldedStacks.ParseError.badLine(number: 2, text: "main;a")) { try FoldedStacks(parsing: "x 1\nmain;a\n") }
        #expect(throws: FoldedStacks.ParseError.badLine(number: 1, text: "main -3")) { try FoldedStacks(parsing: "main -3") }
        #expect(throws: FoldedStacks.ParseError.tooManySamples(line: 2)) {
            try FoldedStacks(parsing: "a \(Int.max)\nb 1\n")
        }
    }

    /// Fill of each drawn frame by its label, from the SVG.
    static func fills(_ svg: String) -> [String: String] {
        var fills = [String: String]()
        for chunk in svg.components(separatedBy: "<g class=\"f\"").dropFirst() {
            guard let title = chunk.range(of: "<title>"), let fill = chunk.range(of: "fill=\"") else { continue }
            let label = String(chunk[title.upperBound...].prefix { $0 != "\n" })
            fills[label] = String(chunk[fill.upperBound...].prefix { $0 != "\"" })
        }
        return fills
    }

    @Test func differentialFlameGraphColorsGrowthRedAndShrinkageBlue() throws {
        // Shares: a 80% -> 10% (shrank most), b 20% -> 40%, c 0 -> 50%, main unchanged.
        let before = try FoldedStacks(parsing: "main;a 80\nmain;b 20\n")
        let after = try FoldedStacks(parsing: "main;a 20\nmain;b 80\nmain;c 100\n")
        let graph = DifferentialFlameGraph(before: before, after: after)
        let changes = graph.changes()
        #expect(abs(changes[["main", "a"]]! + 0.7) < 1e-12)
        #expect(abs(changes[["main", "c"]]! - 0.5) < 1e-12)
        let svg = graph.render(title: "before → after")
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = SVGCollector()
        parser.delegate = collector
        #expect(parser.parse())
        #expect(collector.textByID["title"] == "before → after")
        let fills = MoreViewsWritersTests.fills(svg)
        #expect(fills["a"] == "rgb(40,40,255)")  // the largest change: deepest blue
        #expect(fills["c"] == DifferentialFlameGraph.color(change: 0.5, intensity: 0.5 / 0.7))
        #expect(fills["b"] == DifferentialFlameGraph.color(change: 0.2, intensity: 0.2 / 0.7))
        #expect(fills["main"] == DifferentialFlameGraph.unchangedColor)
        func rgb(_ fill: String?) -> [Int] {
            (fill ?? "").dropFirst(4).dropLast().split(separator: ",").compactMap { Int($0) }
        }
        #expect(rgb(fills["c"])[0] == 255 && rgb(fills["c"])[1] < rgb(fills["b"])[1])  // c redder than b
        #expect(collector.frameTitles.contains("a\n20 samples, 10.00%; before 80 of 100; -70.00 points"))
        #expect(collector.frameTitles.contains("c\n100 samples, 50.00%; before 0 of 100; +50.00 points"))
        #expect(svg.contains(">grew</text>") && svg.contains(">shrank</text>"))
        try Golden.check("diff.svg", svg)
    }
}
