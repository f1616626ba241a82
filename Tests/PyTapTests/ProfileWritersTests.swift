import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import PyTap

/// The profile every writer test renders: two threads of one process, a marker root,
/// Python frames (one whose names hold `;`, `<`, `&`, quotes and non-ASCII), a native
/// frame and a kernel frame. Samples are interleaved in time.
enum WriterFixture {
    static let root = Frame.marker("process 4242 (python3 app.py)")
    static let module = Frame(kind: .python, name: "<module>", file: "app.py", line: 10, functionLine: 1)
    static let run = Frame(kind: .python, name: "run", qualname: "App.run", file: "app.py", line: 20, functionLine: 18)
    static let tricky = Frame(kind: .python, name: "f;g", qualname: "Tricky<T>.f;g & ünïcödé → λ",
                              file: "lib/tëst \"quoted\".py", line: 7, functionLine: 5)
    static let compute = Frame(kind: .python, name: "compute", file: "lib/calc.py", line: 42, functionLine: 40)
    static let worker = Frame(kind: .python, name: "worker", file: "app.py", line: 30, functionLine: 28)
    static let native = Frame(kind: .native, name: "PyObject_Call", module: "/usr/lib/libpython3.12.so.1.0")
    static let kernel = Frame(kind: .kernel, name: "do_syscall_64")

    static let mainThread = SampledThread(pid: 4242, tid: 4242, ident: 0x7f00_aa00, name: "MainThread")
    static let workerThread = SampledThread(pid: 4242, tid: 4250, ident: 0x7f00_bb00, name: "Worker-1")

    static let stackA = [root, module, run, compute]
    static let stackB = [root, module, run, tricky]
    static let stackC = [root, module, run, compute, native, kernel]
    static let stackD = [root, worker, compute]
    static let stackE = [root, worker, native]

    /// Per thread, the stacks in time order (10 ms apart).
    static let mainSamples = [stackA, stackB, stackA, stackC, stackA, stackB, stackA, stackC, stackA, stackB]
    static let workerSamples = [stackD, stackE, stackD, stackA, stackD, stackD]

    static let command = "python3 app.py --name=\"<x>\" & more"

    static func profile(rate: Int = 100) -> Profile {
        var profile = Profile(metadata: ProfileMetadata(
            command: command, pid: 4242, pythonVersion: "3.12.1", rate: rate,
            startTime: 1_700_000_000.25, duration: 0.1))
        for index in 0..<max(mainSamples.count, workerSamples.count) {
            let time = UInt64(index) * 10_000_000
            if index < mainSamples.count { profile.add(rootFirst: mainSamples[index], thread: mainThread, time: time) }
            if index < workerSamples.count {
                profile.add(rootFirst: workerSamples[index], thread: workerThread, time: time + 5_000_000)
            }
        }
        return profile
    }

    /// (labels root first, samples) over both threads, computed without any writer.
    static var expectedStacks: [[String]: Int] {
        var counts = [[String]: Int]()
        for stack in mainSamples + workerSamples { counts[stack.map(\.label), default: 0] += 1 }
        return counts
    }
}

/// Golden files live in Tests/PyTapTests/Golden; PYTAP_RECORD_GOLDEN=1 rewrites them.
enum Golden {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    static func check(_ name: String, _ actual: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = directory.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["PYTAP_RECORD_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try actual.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
            Issue.record("missing golden file \(url.path); run the tests with PYTAP_RECORD_GOLDEN=1 to create it",
                         sourceLocation: sourceLocation)
            return
        }
        guard expected != actual else { return }
        let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
        var line = 0
        while line < min(expectedLines.count, actualLines.count) && expectedLines[line] == actualLines[line] { line += 1 }
        let want = line < expectedLines.count ? String(expectedLines[line]) : "<end of file>"
        let got = line < actualLines.count ? String(actualLines[line]) : "<end of file>"
        Issue.record("""
            \(name) differs from the golden file at line \(line + 1) \
            (rerun with PYTAP_RECORD_GOLDEN=1 if the change is intended):
              expected: \(want)
              actual:   \(got)
            """, sourceLocation: sourceLocation)
    }
}

/// Collects what the SVG tests look at while XMLParser reads the document.
final class SVGCollector: NSObject, XMLParserDelegate {
    var elementCounts = [String: Int]()
    var frameGroups = 0
    var frameTitles = [String]()
    var textByID = [String: String]()
    var scriptText = ""
    var rootAttributes = [String: String]()

    private var stack = [(name: String, attributes: [String: String])]()
    private var characters = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if stack.isEmpty { rootAttributes = attributes }
        elementCounts[name, default: 0] += 1
        if name == "g" && attributes["class"] == "f" { frameGroups += 1 }
        stack.append((name, attributes))
        characters = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { characters += string }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        characters += String(decoding: CDATABlock, as: UTF8.self)
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        guard let element = stack.popLast() else { return }
        if name == "title", stack.last?.attributes["class"] == "f" { frameTitles.append(characters) }
        if name == "script" { scriptText += characters }
        if let id = element.attributes["id"], name == "text" { textByID[id] = characters }
        characters = ""
    }
}

@Suite struct ProfileWritersTests {
    // MARK: Format selection

    @Test func outputFormatInferredFromPath() {
        let cases: [(String, OutputFormat?)] = [
            ("out.txt", .folded), ("stacks.folded", .folded), ("a/b/Graph.SVG", .svg),
            ("p.json", .speedscope), ("p.speedscope.json", .speedscope),
            ("cpu.pb.gz", .pprof), ("cpu.pprof", .pprof),
            ("p.gecko.json", .gecko), ("Lines.HEAT.html", .heatmap),
            ("cpu.gz", nil), ("profile", nil), ("svg", nil), (".svg", nil), ("x.html", nil),
        ]
        for (path, format) in cases {
            #expect(OutputFormat.infer(fromPath: path) == format, "\(path)")
        }
        for format in OutputFormat.allCases {
            #expect(OutputFormat.infer(fromPath: "profile." + format.fileExtension) == format)
        }
    }

    @Test func outputFormatRenderDispatchesToWriters() throws {
        let profile = WriterFixture.profile()
        #expect(try OutputFormat.folded.render(profile) == Array(FoldedWriter().render(profile).utf8))
        #expect(try OutputFormat.svg.render(profile) == Array(FlameGraphWriter().render(profile).utf8))
        #expect(try OutputFormat.speedscope.render(profile) == Array(try SpeedscopeWriter().render(profile).utf8))
        let pprof = try OutputFormat.pprof.render(profile)
        #expect(pprof.starts(with: [0x1f, 0x8b]))
        #expect(try Gzip.decompress(pprof) == PprofWriter().makeProfile(profile).serialized())
        #expect(try OutputFormat.gecko.render(profile) == Array(try GeckoWriter().render(profile).utf8))
        #expect(try OutputFormat.heatmap.render(profile) == Array(HeatmapWriter().render(profile, sources: { _ in nil }).utf8))
        #expect(OutputFormat.pprof.isBinary && !OutputFormat.folded.isBinary)
    }

    // MARK: Folded

    @Test func foldedWriterMatchesGolden() throws {
        let text = FoldedWriter().render(WriterFixture.profile())
        try Golden.check("profile.folded", text)

        // Independently of the golden file: one line per distinct stack, `;` only between
        // frames, counts as expected, lines sorted.
        var parsed = [[String]: Int]()
        let lines = text.split(separator: "\n").map(String.init)
        for line in lines {
            let space = try #require(line.lastIndex(of: " "))
            let count = try #require(Int(line[line.index(after: space)...]))
            parsed[line[..<space].split(separator: ";", omittingEmptySubsequences: false).map(String.init)] = count
        }
        let expected = Dictionary(uniqueKeysWithValues: WriterFixture.expectedStacks.map { stack, count in
            (stack.map { $0.replacingOccurrences(of: ";", with: ":") }, count)
        })
        #expect(parsed == expected)
        #expect(lines == lines.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(text.contains("Tricky<T>.f:g & ünïcödé → λ (lib/tëst \"quoted\".py:7)"))
        #expect(text.hasSuffix("\n"))
    }

    @Test func foldedWriterMergesStacksThatSanitizeAlike() {
        var profile = Profile(metadata: ProfileMetadata(command: "x", pid: 1, pythonVersion: nil, rate: 100,
                                                         startTime: 0, duration: 1))
        let thread = SampledThread(pid: 1, tid: 1, ident: 1, name: nil)
        profile.add(rootFirst: [Frame(kind: .native, name: "a;b")], thread: thread, time: 0)
        profile.add(rootFirst: [Frame(kind: .native, name: "a:b")], thread: thread, time: 1)
        profile.add(rootFirst: [Frame(kind: .native, name: "line\nbreak")], thread: thread, time: 2)
        profile.add(rootFirst: [], thread: thread, time: 3)
        #expect(FoldedWriter().render(profile) == "(no frames) 1\na:b 2\nline break 1\n")
    }

    // MARK: SVG flame graph

    @Test func flameGraphWriterMatchesGolden() throws {
        try Golden.check("profile.svg", FlameGraphWriter().render(WriterFixture.profile()))
    }

    @Test func flameGraphWriterOutputParsesAsXML() throws {
        let svg = FlameGraphWriter().render(WriterFixture.profile())
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = SVGCollector()
        parser.delegate = collector
        #expect(parser.parse(), "XML error: \(String(describing: parser.parserError))")

        #expect(collector.elementCounts["svg"] == 1)
        #expect(collector.textByID["title"] == WriterFixture.command)
        #expect(collector.textByID["subtitle"] == "pid 4242, Python 3.12.1, 0.10 s, 16 samples at 100 Hz")
        #expect(collector.textByID["reset"] == "Reset zoom")
        #expect(collector.textByID["search"] == "Search")
        #expect(collector.textByID["details"] != nil && collector.textByID["matched"] != nil)
        #expect(collector.elementCounts["script"] == 1)
        #expect(collector.scriptText.contains("function zoom("))
        #expect(collector.scriptText.contains("total: 16"))

        // One <g class="f"> per frame of the merged call tree (every distinct stack
        // prefix) plus the root, each with a tooltip naming the frame, its samples and share.
        var prefixes = [[String]: Int]()
        for (stack, count) in WriterFixture.expectedStacks {
            for depth in 1...stack.count { prefixes[Array(stack.prefix(depth)), default: 0] += count }
        }
        #expect(collector.frameGroups == prefixes.count + 1)
        #expect(collector.frameTitles.count == collector.frameGroups)
        #expect(collector.frameTitles.contains("all\n16 samples, 100.00%"))
        #expect(collector.frameTitles.contains("Tricky<T>.f;g & ünïcödé → λ (lib/tëst \"quoted\".py:7)\n3 samples, 18.75%"))
        #expect(collector.frameTitles.contains("do_syscall_64_[k]\n2 samples, 12.50%"))
        for (prefix, count) in prefixes {
            let label = try #require(prefix.last)
            #expect(collector.frameTitles.contains { $0.hasPrefix(label + "\n\(count) sample") }, "\(prefix)")
        }
    }

    @Test func flameGraphWriterHidesNarrowFramesAndCutsLabels() throws {
        var profile = Profile(metadata: ProfileMetadata(command: "python3 big.py", pid: 7, pythonVersion: nil,
                                                         rate: 1000, startTime: 0, duration: 3))
        let thread = SampledThread(pid: 7, tid: 7, ident: 1, name: "MainThread")
        let long = Frame(kind: .python, name: "f", qualname: String(repeating: "very_long_function_name_", count: 60),
                         file: "big.py", line: 1)
        let narrow = Frame(kind: .python, name: "rare", file: "big.py", line: 2)
        for index in 0..<2999 { profile.add(rootFirst: [long], thread: thread, time: UInt64(index)) }
        profile.add(rootFirst: [long, narrow], thread: thread, time: 3000)  // 1/3000 < 0.1%

        let svg = FlameGraphWriter().render(profile)
        let collector = SVGCollector()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = collector
        #expect(parser.parse())
        #expect(collector.frameGroups == 2)  // all + the long frame; "rare" is hidden
        #expect(!svg.contains("rare (big.py:2)"))
        // The long label is cut with ".." inside its frame, whole in its tooltip.
        #expect(svg.contains("very_long_function_name_very_long_function_name_"))
        #expect(svg.contains("..</text>"))
        #expect(collector.frameTitles.contains { $0.hasPrefix(long.label + "\n") })

        // With a lower threshold the narrow frame is drawn.
        let all = FlameGraphWriter(minimumFraction: 0).render(profile)
        #expect(all.contains("rare (big.py:2)"))
    }

    @Test func flameGraphWriterHandlesEmptyProfile() {
        let profile = Profile(metadata: ProfileMetadata(command: "", pid: 9, pythonVersion: nil, rate: 100,
                                                         startTime: 0, duration: 0))
        let svg = FlameGraphWriter().render(profile)
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse())
        #expect(svg.contains("No samples"))
    }

    @Test func flameGraphWriterColorsAreStablePerFunction() throws {
        // The same function at two lines gets the same fill; kinds get different ones.
        let svg = FlameGraphWriter().render(WriterFixture.profile())
        func fills(_ label: String) -> Set<String> {
            var found = Set<String>()
            for chunk in svg.components(separatedBy: "<g class=\"f\"").dropFirst() where chunk.contains("<title>" + label) {
                if let range = chunk.range(of: "fill=\"rgb(") {
                    found.insert(String(chunk[range.upperBound...].prefix { $0 != ")" }))
                }
            }
            return found
        }
        let compute = fills("compute (lib/calc.py:42)")
        #expect(compute.count == 1)
        #expect(fills("PyObject_Call").count == 1)
        #expect(fills("PyObject_Call") != compute)
        #expect(fills("do_syscall_64_[k]") != compute)
    }

    // MARK: speedscope

    @Test func speedscopeWriterMatchesGolden() throws {
        try Golden.check("profile.speedscope.json", try SpeedscopeWriter().render(WriterFixture.profile()))
    }

    @Test func speedscopeWriterOutputFollowsSchema() throws {
        let text = try SpeedscopeWriter().render(WriterFixture.profile())
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        let json = try #require(object as? [String: Any])
        #expect(json["$schema"] as? String == "https://www.speedscope.app/file-format-schema.json")
        #expect(json["name"] as? String == WriterFixture.command)
        #expect(json["activeProfileIndex"] as? Int == 0)
        #expect((json["exporter"] as? String)?.hasPrefix("pytap ") == true)

        let shared = try #require(json["shared"] as? [String: Any])
        let frames = try #require(shared["frames"] as? [[String: Any]])
        let names = frames.compactMap { $0["name"] as? String }
        #expect(names.count == frames.count)
        #expect(Set(names) == ["process 4242 (python3 app.py)", "<module>", "App.run", "compute", "worker",
                               "Tricky<T>.f;g & ünïcödé → λ", "PyObject_Call", "do_syscall_64_[k]"])
        let tricky = try #require(frames.first { $0["name"] as? String == "Tricky<T>.f;g & ünïcödé → λ" })
        #expect(tricky["file"] as? String == "lib/tëst \"quoted\".py")
        #expect(tricky["line"] as? Int == 7)
        let native = try #require(frames.first { $0["name"] as? String == "PyObject_Call" })
        #expect(native["file"] == nil && native["line"] == nil)

        let profiles = try #require(json["profiles"] as? [[String: Any]])
        #expect(profiles.count == 2)
        #expect(profiles.map { $0["name"] as? String } == ["MainThread (tid 4242)", "Worker-1 (tid 4250)"])
        let expectedSamples = [WriterFixture.mainSamples, WriterFixture.workerSamples]
        for (profile, expected) in zip(profiles, expectedSamples) {
            #expect(profile["type"] as? String == "sampled")
            #expect(profile["unit"] as? String == "seconds")
            let samples = try #require(profile["samples"] as? [[Int]])
            let weights = try #require(profile["weights"] as? [Double])
            #expect(samples.count == weights.count)
            #expect(samples.count == expected.count)
            #expect(samples.allSatisfy { $0.allSatisfy { frames.indices.contains($0) } })
            // Root first, in time order.
            let decoded = samples.map { $0.map { frames[$0]["name"] as? String ?? "?" } }
            #expect(decoded == expected.map { $0.map(\.functionName) })
            #expect(weights.allSatisfy { abs($0 - 0.01) < 1e-12 })
            let start = try #require(profile["startValue"] as? Double)
            let end = try #require(profile["endValue"] as? Double)
            #expect(abs((end - start) - weights.reduce(0, +)) < 1e-9)
        }
        #expect(profiles[1]["startValue"] as? Double == 0.005)
    }

    @Test func speedscopeWriterNamesProcessesWhenSeveral() throws {
        var profile = Profile(metadata: ProfileMetadata(command: "", pid: 10, pythonVersion: nil, rate: 50,
                                                         startTime: 0, duration: 1))
        let frame = Frame(kind: .python, name: "main", file: "m.py", line: 1)
        profile.add(rootFirst: [frame], thread: SampledThread(pid: 10, tid: 10, ident: 1, name: "MainThread"), time: 0)
        profile.add(rootFirst: [frame], thread: SampledThread(pid: 11, tid: nil, ident: 0xabc, name: nil), time: 1)
        let object = try JSONSerialization.jsonObject(with: Data(try SpeedscopeWriter().render(profile).utf8))
        let json = try #require(object as? [String: Any])
        let profiles = try #require(json["profiles"] as? [[String: Any]])
        #expect(profiles.map { $0["name"] as? String } == ["MainThread (tid 10) [pid 10]", "Thread 0xabc [pid 11]"])
        #expect(json["name"] as? String == "pid 10")
        let shared = try #require(json["shared"] as? [String: Any])
        #expect((shared["frames"] as? [Any])?.count == 1)
    }

    @Test func speedscopeAndPprofWritersRejectZeroRate() {
        let profile = WriterFixture.profile(rate: 0)
        #expect(throws: ReportError.invalidRate(0)) { try SpeedscopeWriter().render(profile) }
        #expect(throws: ReportError.invalidRate(0)) { try PprofWriter().render(profile) }
    }

    // MARK: pprof

    @Test func pprofWriterOutputDecodes() throws {
        let bytes = try PprofWriter().render(WriterFixture.profile())
        #expect(bytes.starts(with: [0x1f, 0x8b, 8]))  // gzip, deflate
        let pprof = try decodePprof(bytes)
        let strings = pprof.stringTable
        func string(_ index: Int64) -> String {
            index >= 0 && Int(index) < strings.count ? strings[Int(index)] : "<bad index \(index)>"
        }

        #expect(strings.first == "")
        #expect(Set(strings).count == strings.count)  // interned once
        #expect(pprof.sampleType.map { [string($0.type), string($0.unit)] } == [["samples", "count"], ["cpu", "nanoseconds"]])
        #expect([string(pprof.periodType.type), string(pprof.periodType.unit)] == ["cpu", "nanoseconds"])
        #expect(pprof.period == 10_000_000)
        #expect(pprof.timeNanos == 1_700_000_000_250_000_000)
        #expect(pprof.durationNanos == 100_000_000)
        #expect(pprof.comment.map(string) == [WriterFixture.command])

        let functions = Dictionary(uniqueKeysWithValues: pprof.function.map { ($0.id, $0) })
        let locations = Dictionary(uniqueKeysWithValues: pprof.location.map { ($0.id, $0) })
        let mappings = Dictionary(uniqueKeysWithValues: pprof.mapping.map { ($0.id, $0) })
        #expect(functions.count == pprof.function.count && !functions.keys.contains(0))
        #expect(locations.count == pprof.location.count && !locations.keys.contains(0))
        #expect(pprof.location.count == 8)  // one per distinct frame
        #expect(pprof.function.count == 8)

        // Function names, system names, files and first lines.
        let described = Set(pprof.function.map {
            "\(string($0.name))|\(string($0.systemName))|\(string($0.filename))|\($0.startLine)"
        })
        #expect(described == [
            "process 4242 (python3 app.py)|||0",
            "<module>||app.py|1",
            "App.run|run|app.py|18",
            "Tricky<T>.f;g & ünïcödé → λ|f;g|lib/tëst \"quoted\".py|5",
            "compute||lib/calc.py|40",
            "worker||app.py|28",
            "PyObject_Call|PyObject_Call||0",
            "do_syscall_64|do_syscall_64||0",
        ])
        // The kernel's mapping last, so pprof does not take it for the main binary.
        #expect(pprof.mapping.map { string($0.filename) } == ["/usr/lib/libpython3.12.so.1.0", "[kernel.kallsyms]"])
        #expect(pprof.mapping.map(\.id) == [1, 2])
        #expect(pprof.mapping.allSatisfy { $0.hasFunctions_p && $0.hasFilenames_p && $0.hasLineNumbers_p })

        // Samples: per (thread, stack) the counts, locations leaf first.
        var counts = [String: [Int64]]()
        for sample in pprof.sample {
            var thread = "", tid: Int64 = -1, pid: Int64 = -1
            for label in sample.label {
                switch string(label.key) {
                case "thread": thread = string(label.str)
                case "tid": tid = label.num
                case "pid": pid = label.num
                default: Issue.record("unexpected label \(string(label.key))")
                }
            }
            #expect(pid == 4242)
            var names = [String]()
            for id in sample.locationID {
                let location = try #require(locations[id])
                let line = try #require(location.line.first)
                #expect(location.line.count == 1)
                let function = try #require(functions[line.functionID])
                names.append("\(string(function.name)):\(line.line)")
                let mapping = mappings[location.mappingID].map { string($0.filename) }
                switch functions[line.functionID].map({ string($0.name) }) {
                case "PyObject_Call": #expect(mapping == "/usr/lib/libpython3.12.so.1.0")
                case "do_syscall_64": #expect(mapping == "[kernel.kallsyms]")
                default: #expect(location.mappingID == 0)
                }
            }
            let key = "\(thread)/\(tid)/" + names.joined(separator: " <- ")
            #expect(counts[key] == nil, "one sample per (stack, thread)")
            counts[key] = sample.value
        }
        func key(_ thread: String, _ tid: Int, _ stack: [Frame]) -> String {
            "\(thread)/\(tid)/" + stack.reversed().map { "\($0.qualname):\($0.line ?? 0)" }.joined(separator: " <- ")
        }
        let w = WriterFixture.self
        #expect(counts == [
            key("MainThread", 4242, w.stackA): [5, 50_000_000],
            key("MainThread", 4242, w.stackB): [3, 30_000_000],
            key("MainThread", 4242, w.stackC): [2, 20_000_000],
            key("Worker-1", 4250, w.stackD): [4, 40_000_000],
            key("Worker-1", 4250, w.stackE): [1, 10_000_000],
            key("Worker-1", 4250, w.stackA): [1, 10_000_000],
        ])
        // Leaf first: the kernel frame leads the deepest stack.
        #expect(counts.keys.contains { $0.hasPrefix("MainThread/4242/do_syscall_64:0 <- PyObject_Call:0 <- compute:42") })
    }

    @Test func reportGzipRoundTrips() throws {
        var bytes = [UInt8]()
        for index in 0..<300_000 { bytes.append(UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 7)) }
        let compressed = try Gzip.compress(bytes)
        #expect(compressed.starts(with: [0x1f, 0x8b]))
        #expect(try Gzip.decompress(compressed) == bytes)
        #expect(try Gzip.decompress(Gzip.compress([])) == [])
        // Concatenated members decompress to the concatenation.
        #expect(try Gzip.decompress(Gzip.compress([1, 2]) + Gzip.compress([3])) == [1, 2, 3])
        #expect(throws: ReportError.self) { try Gzip.decompress(Array(compressed.prefix(20))) }
        #expect(throws: ReportError.self) { try decodePprof([0x1f, 0x8b, 0, 1, 2]) }
    }
}
