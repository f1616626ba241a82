/// The Firefox Profiler's processed profile format, version 57 (the profiler upgrades it
/// on load; its shape is `src/types/profile.js` of firefox-devtools/profiler at that version):
///
///     {"meta": {"version", "preprocessedProfileVersion": 57, "interval" (ms), "startTime"
///               (ms since the epoch), "categories", "markerSchema", "product", ...},
///      "libs": [], "pages": [], "counters": [],
///      "shared": {"stringArray": [...]},
///      "threads": [{"name", "pid", "tid", "samples": {"stack", "time", ...}, "markers",
///                   "stackTable", "frameTable", "funcTable", "resourceTable", "nativeSymbols"}]}
///
/// One thread (track) per sampled thread; a sample's time is milliseconds after the
/// recording started. Tables are columns ("struct of arrays") with a `length`. Functions
/// are (name, file, first line); Python files are resources, so the profiler can group
/// by file. Samples of a thread whose state the sampler knew become interval markers:
/// "On CPU"/"Off CPU" and "Holds GIL"/"Without GIL", one per run of samples in that state
/// (a run also ends where the thread has no sample for `gapIntervals` intervals, e.g.
/// while it was off a CPU and not sampled).
public struct GeckoWriter: Sendable {
    public static let processedProfileVersion = 57
    /// The Gecko format version that went with processed version 57.
    public static let geckoProfileVersion = 31
    /// Samples this many intervals apart are not one run of a state.
    public static let gapIntervals: UInt64 = 3

    public init() {}

    /// Category indices into `categories`; "Other" (grey) is the default every profile needs.
    public enum Category: Int, CaseIterable, Sendable {
        case other, python, native, kernel, pytap, cpu, gil

        var name: String {
            switch self {
            case .other: return "Other"
            case .python: return "Python"
            case .native: return "Native"
            case .kernel: return "Kernel"
            case .pytap: return "pytap"
            case .cpu: return "CPU"
            case .gil: return "GIL"
            }
        }

        /// One of the profiler's named colours.
        var color: String {
            switch self {
            case .other: return "grey"
            case .python: return "yellow"
            case .native: return "blue"
            case .kernel: return "orange"
            case .pytap: return "lightblue"
            case .cpu: return "purple"
            case .gil: return "green"
            }
        }

        init(_ kind: FrameKind) {
            switch kind {
            case .python: self = .python
            case .native: self = .native
            case .kernel: self = .kernel
            case .marker: self = .pytap
            }
        }
    }

    /// An interval marker of one thread, times in ns after the start.
    public struct Marker: Equatable, Sendable {
        public var name: String
        public var category: Category
        public var start: UInt64
        public var end: UInt64
    }

    /// The state markers of one thread's timeline: a marker per run of samples in one state
    /// of each pair, ended at the sample after the run or `interval` after its last sample.
    public static func markers(_ timeline: [(stack: UInt32, state: SampleState, time: UInt64)], interval: UInt64) -> [Marker] {
        let pairs: [(SampleState, String, SampleState, String, Category)] = [
            (.onCPU, "On CPU", .offCPU, "Off CPU", .cpu),
            (.holdsGIL, "Holds GIL", .withoutGIL, "Without GIL", .gil),
        ]
        let gap = max(1, interval) * gapIntervals
        var markers = [Marker]()
        for (yes, yesName, no, noName, category) in pairs {
            var open: (name: String, start: UInt64, last: UInt64)?
            for sample in timeline {
                let name: String? = sample.state.contains(yes) ? yesName : sample.state.contains(no) ? noName : nil
                if let current = open, current.name != name || sample.time &- current.last > gap {
                    let end = current.name != name && sample.time &- current.last <= gap ? sample.time : current.last + interval
                    markers.append(Marker(name: current.name, category: category, start: current.start, end: end))
                    open = nil
                }
                if let name {
                    if open == nil { open = (name, sample.time, sample.time) } else { open?.last = sample.time }
                }
            }
            if let current = open {
                markers.append(Marker(name: current.name, category: category, start: current.start, end: current.last + interval))
            }
        }
        return markers
    }

    private struct FuncKey: Hashable {
        var name: String
        var file: String?
        var firstLine: Int?
        var kind: FrameKind
    }

    /// A thread's tables, built from the stacks its samples use.
    private struct ThreadTables {
        var stackPrefix = [Int?]()
        var stackFrame = [Int]()
        var stackIndex = [StackKey: Int]()
        var frameFunc = [Int]()
        var frameLine = [Int?]()
        var frameCategory = [Int]()
        var frameIndex = [UInt32: Int]()
        var funcName = [Int]()
        var funcIsPython = [Bool]()
        var funcResource = [Int]()
        var funcFile = [Int?]()
        var funcLine = [Int?]()
        var funcIndex = [FuncKey: Int]()
        var resourceName = [Int]()
        var resourceIndex = [String: Int]()
        /// Processed stack index per profile stack id.
        var sampleStack = [UInt32: Int]()
    }

    private struct StackKey: Hashable {
        var prefix: Int?
        var frame: Int
    }

    private final class Strings {
        var array = [String]()
        var index = [String: Int]()
        func id(_ text: String) -> Int {
            if let known = index[text] { return known }
            index[text] = array.count
            array.append(text)
            return array.count - 1
        }
    }

    public func render(_ profile: Profile) throws -> String {
        let metadata = profile.metadata
        guard metadata.rate > 0 else { throw ReportError.invalidRate(metadata.rate) }
        let intervalNanoseconds = UInt64(metadata.sampleIntervalNanoseconds)
        let strings = Strings()
        let pids = Set(profile.threads.map(\.pid))

        var json = JSONWriter()
        json.beginObject()
        json.key("meta")
        json.beginObject()
        json.field("version", GeckoWriter.geckoProfileVersion)
        json.field("preprocessedProfileVersion", GeckoWriter.processedProfileVersion)
        json.key("interval")
        json.number(1000 / Double(metadata.rate))
        json.key("startTime")
        json.number(metadata.startTime * 1000)
        json.field("processType", 0)
        json.field("product", metadata.command.isEmpty ? "pid \(metadata.pid)" : metadata.command)
        json.field("stackwalk", 0)
        json.field("platform", "Linux")
        json.field("symbolicated", true)
        json.field("importedFrom", "pytap \(PyTapVersion.string)")
        if let version = metadata.pythonVersion { json.field("misc", "Python \(version)") }
        json.key("categories")
        json.beginArray()
        for category in Category.allCases {
            json.beginObject()
            json.field("name", category.name)
            json.field("color", category.color)
            json.key("subcategories")
            json.beginArray()
            json.string("Other")
            json.endArray()
            json.endObject()
        }
        json.endArray()
        json.key("markerSchema")
        json.beginArray()
        json.endArray()
        json.endObject()
        json.key("libs")
        json.beginArray()
        json.endArray()
        json.key("pages")
        json.beginArray()
        json.endArray()
        json.key("counters")
        json.beginArray()
        json.endArray()

        json.key("threads")
        json.beginArray()
        for (thread, timeline) in zip(profile.threads, profile.timelines) {
            var tables = ThreadTables()
            for sample in timeline where tables.sampleStack[sample.stack] == nil {
                tables.sampleStack[sample.stack] = GeckoWriter.intern(stack: profile.stacks[sample.stack], of: profile,
                                                                      into: &tables, strings: strings)
            }
            let markers = GeckoWriter.markers(timeline, interval: intervalNanoseconds)
            let firstTime = timeline.first.map { GeckoWriter.milliseconds($0.time) } ?? 0

            json.beginObject()
            json.field("name", thread.name ?? "Thread 0x\(String(thread.ident, radix: 16))")
            json.field("isMainThread", thread.name == "MainThread")
            json.field("processType", "default")
            json.field("processName", pids.count > 1 ? "pid \(thread.pid)" : (metadata.command.isEmpty ? "pid \(thread.pid)" : metadata.command))
            json.key("processStartupTime")
            json.number(0.0)
            json.key("processShutdownTime")
            json.null()
            json.key("registerTime")
            json.number(firstTime)
            json.key("unregisterTime")
            json.null()
            json.key("pausedRanges")
            json.beginArray()
            json.endArray()
            json.field("pid", String(thread.pid))
            if let tid = thread.tid { json.field("tid", tid) } else { json.field("tid", "0x" + String(thread.ident, radix: 16)) }

            json.key("samples")
            json.beginObject()
            json.key("stack")
            json.beginArray()
            for sample in timeline { json.number(tables.sampleStack[sample.stack]) }
            json.endArray()
            json.key("time")
            json.beginArray()
            for sample in timeline { json.number(GeckoWriter.milliseconds(sample.time)) }
            json.endArray()
            json.key("weight")
            json.null()
            json.field("weightType", "samples")
            json.field("length", timeline.count)
            json.endObject()

            json.key("markers")
            json.beginObject()
            json.key("data")
            json.beginArray()
            for _ in markers { json.null() }
            json.endArray()
            json.key("name")
            json.beginArray()
            for marker in markers { json.number(strings.id(marker.name)) }
            json.endArray()
            json.key("startTime")
            json.beginArray()
            for marker in markers { json.number(GeckoWriter.milliseconds(marker.start)) }
            json.endArray()
            json.key("endTime")
            json.beginArray()
            for marker in markers { json.number(GeckoWriter.milliseconds(marker.end)) }
            json.endArray()
            json.key("phase")
            json.beginArray()
            for _ in markers { json.number(1) }  // an interval
            json.endArray()
            json.key("category")
            json.beginArray()
            for marker in markers { json.number(marker.category.rawValue) }
            json.endArray()
            json.field("length", markers.count)
            json.endObject()

            GeckoWriter.writeTables(tables, to: &json)
            json.endObject()
        }
        json.endArray()

        json.key("shared")
        json.beginObject()
        json.key("stringArray")
        json.beginArray()
        for text in strings.array { json.string(text) }
        json.endArray()
        json.endObject()
        json.endObject()
        return json.output + "\n"
    }

    static func milliseconds(_ nanoseconds: UInt64) -> Double {
        Double(nanoseconds) / 1e6
    }

    /// The processed stack of `ids` (root first), adding the stacks, frames, functions and
    /// resources it needs.
    private static func intern(stack ids: [UInt32], of profile: Profile, into tables: inout ThreadTables, strings: Strings) -> Int? {
        var prefix: Int?
        for id in ids {
            let frameIndex: Int
            if let known = tables.frameIndex[id] {
                frameIndex = known
            } else {
                let frame = profile.frames[id]
                let key = FuncKey(name: frame.functionName, file: frame.file,
                                  firstLine: frame.functionLine, kind: frame.kind)
                let funcIndex: Int
                if let known = tables.funcIndex[key] {
                    funcIndex = known
                } else {
                    var resource = -1
                    if let file = frame.file {
                        if let known = tables.resourceIndex[file] {
                            resource = known
                        } else {
                            resource = tables.resourceName.count
                            tables.resourceIndex[file] = resource
                            tables.resourceName.append(strings.id(file))
                        }
                    }
                    funcIndex = tables.funcName.count
                    tables.funcIndex[key] = funcIndex
                    tables.funcName.append(strings.id(key.name))
                    tables.funcIsPython.append(frame.kind == .python)
                    tables.funcResource.append(resource)
                    tables.funcFile.append(frame.file.map(strings.id))
                    tables.funcLine.append(frame.functionLine)
                }
                frameIndex = tables.frameFunc.count
                tables.frameIndex[id] = frameIndex
                tables.frameFunc.append(funcIndex)
                tables.frameLine.append(frame.line)
                tables.frameCategory.append(Category(frame.kind).rawValue)
            }
            let key = StackKey(prefix: prefix, frame: frameIndex)
            if let known = tables.stackIndex[key] {
                prefix = known
            } else {
                let index = tables.stackFrame.count
                tables.stackIndex[key] = index
                tables.stackPrefix.append(prefix)
                tables.stackFrame.append(frameIndex)
                prefix = index
            }
        }
        return prefix
    }

    private static func writeTables(_ tables: ThreadTables, to json: inout JSONWriter) {
        func column<T: BinaryInteger>(_ name: String, _ values: [T?]) {
            json.key(name)
            json.beginArray()
            for value in values { json.number(value) }
            json.endArray()
        }
        func constant(_ name: String, _ count: Int, _ write: (inout JSONWriter) -> Void) {
            json.key(name)
            json.beginArray()
            for _ in 0..<count { write(&json) }
            json.endArray()
        }

        json.key("stackTable")
        json.beginObject()
        column("frame", tables.stackFrame)
        column("prefix", tables.stackPrefix)
        json.field("length", tables.stackFrame.count)
        json.endObject()

        let frames = tables.frameFunc.count
        json.key("frameTable")
        json.beginObject()
        constant("address", frames) { $0.number(-1) }
        constant("inlineDepth", frames) { $0.number(0) }
        column("category", tables.frameCategory)
        constant("subcategory", frames) { $0.number(0) }
        column("func", tables.frameFunc)
        constant("nativeSymbol", frames) { $0.null() }
        constant("innerWindowID", frames) { $0.number(0) }
        column("line", tables.frameLine)
        constant("column", frames) { $0.null() }
        json.field("length", frames)
        json.endObject()

        let funcs = tables.funcName.count
        json.key("funcTable")
        json.beginObject()
        column("name", tables.funcName)
        json.key("isJS")
        json.beginArray()
        for isPython in tables.funcIsPython { json.bool(isPython) }
        json.endArray()
        constant("relevantForJS", funcs) { $0.bool(false) }
        column("resource", tables.funcResource)
        column("fileName", tables.funcFile)
        column("lineNumber", tables.funcLine)
        constant("columnNumber", funcs) { $0.null() }
        json.field("length", funcs)
        json.endObject()

        let resources = tables.resourceName.count
        json.key("resourceTable")
        json.beginObject()
        constant("lib", resources) { $0.null() }
        column("name", tables.resourceName)
        constant("host", resources) { $0.null() }
        constant("type", resources) { $0.number(0) }  // unknown: a source file, not a library
        json.field("length", resources)
        json.endObject()

        json.key("nativeSymbols")
        json.beginObject()
        for name in ["libIndex", "address", "name", "functionSize"] {
            json.key(name)
            json.beginArray()
            json.endArray()
        }
        json.field("length", 0)
        json.endObject()
    }
}
