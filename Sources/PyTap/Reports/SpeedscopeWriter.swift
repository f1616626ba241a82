/// speedscope's file format (https://www.speedscope.app/file-format-schema.json):
///
///     {"$schema": "https://www.speedscope.app/file-format-schema.json",
///      "shared": {"frames": [{"name", "file"?, "line"?}]},
///      "profiles": [{"type": "sampled", "name", "unit": "seconds", "startValue", "endValue",
///                    "samples": [[frame index, root first]], "weights": [seconds]}],
///      "name", "activeProfileIndex": 0, "exporter": "pytap <version>"}
///
/// One sampled profile per thread, samples in time order, each weighing one sampling
/// interval (1/rate seconds). A profile starts at its thread's first sample (seconds
/// after the recording started) and ends `sum(weights)` later, which is how speedscope
/// lays samples out. Frames are named by qualname (Python), symbol (native), `symbol_[k]`
/// (kernel) or their text (markers); file and line are given when known.
///
/// A profile in bytes (memtrace) has unit "bytes", each sample weighing its bytes, and
/// starts at 0.
public struct SpeedscopeWriter: Sendable {
    public static let schemaURL = "https://www.speedscope.app/file-format-schema.json"

    public init() {}


    private struct FrameKey: Hashable {
        var name: String
        var file: String?
        var line: Int?
    }

    public func render(_ profile: Profile) throws -> String {
        let rate = profile.metadata.rate
        let inBytes = profile.metadata.unit == .bytes
        guard rate > 0 || inBytes else { throw ReportError.invalidRate(rate) }
        let interval = inBytes ? 1 : 1.0 / Double(rate)

        // Shared frames: one per distinct (name, file, line), in frame-table order of the
        // frames samples use.
        var used = [Bool](repeating: false, count: profile.frames.count)
        for timeline in profile.timelines {
            for sample in timeline {
                for id in profile.stacks[sample.stack] { used[Int(id)] = true }
            }
        }
        var keys = [FrameKey]()
        var keyIndex = [FrameKey: Int]()
        var index = [Int](repeating: -1, count: profile.frames.count)
        for (id, frame) in profile.frames.frames.enumerated() where used[id] {
            let key = FrameKey(name: frame.functionName, file: frame.file, line: frame.line)
            if let known = keyIndex[key] {
                index[id] = known
            } else {
                index[id] = keys.count
                keyIndex[key] = keys.count
                keys.append(key)
            }
        }

        let pids = Set(profile.threads.map(\.pid))
        var json = JSONWriter()
        json.beginObject()
        json.field("$schema", SpeedscopeWriter.schemaURL)
        json.key("shared")
        json.beginObject()
        json.key("frames")
        json.beginArray()
        for key in keys {
            json.beginObject()
            json.field("name", key.name)
            if let file = key.file { json.field("file", file) }
            if let line = key.line { json.field("line", line) }
            json.endObject()
        }
        json.endArray()
        json.endObject()

        json.key("profiles")
        json.beginArray()
        for (threadIndex, (thread, timeline)) in zip(profile.threads, profile.timelines).enumerated() {
            var name = thread.label
            if pids.count > 1 { name += " [pid \(thread.pid)]" }
            let start = inBytes ? 0 : Double(timeline.first?.time ?? 0) / 1e9
            let weights = timeline.indices.map { Double(profile.weight(thread: threadIndex, sample: $0).value) * interval }
            json.beginObject()
            json.field("type", "sampled")
            json.field("name", name)
            json.field("unit", inBytes ? "bytes" : "seconds")
            json.key("startValue")
            json.number(start)
            json.key("endValue")
            json.number(start + (inBytes ? weights.reduce(0, +) : Double(timeline.count) * interval))
            json.key("samples")
            json.beginArray()
            for sample in timeline {
                json.beginArray()
                for id in profile.stacks[sample.stack] { json.number(index[Int(id)]) }
                json.endArray()
            }
            json.endArray()
            json.key("weights")
            json.beginArray()
            for weight in weights { json.number(weight) }
            json.endArray()
            json.endObject()
        }
        json.endArray()

        let command = profile.metadata.command
        json.field("name", command.isEmpty ? "pid \(profile.metadata.pid)" : command)
        json.field("activeProfileIndex", 0)
        json.field("exporter", "pytap \(PyTapVersion.string)")
        json.endObject()
        return json.output + "\n"
    }
}
