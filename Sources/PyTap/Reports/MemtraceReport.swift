/// The allocations still alive at the end of a trace, grouped by the Python stack that made
/// them, biggest first: what `pytap memtrace` prints, whatever saw the allocations
/// (`via`): `init(via:...survivors:)` takes groups from any mechanism, and `text`, `json`
/// and `profile` (for the writers of `OutputFormat`) only read them.
public struct MemtraceReport: Sendable {
    public struct Survivors: Sendable {
        public var count: Int
        public var bytes: UInt64
        /// First and last allocation of the group, nanoseconds after tracing started.
        public var firstNanoseconds: UInt64
        public var lastNanoseconds: UInt64
        /// Innermost first; a marker when the thread's stack was unknown.
        public var frames: [Frame]
        /// The most common type name among the group's blocks that were recognisable
        /// objects; nil when none was.
        public var type: String?

        public init(count: Int, bytes: UInt64, firstNanoseconds: UInt64, lastNanoseconds: UInt64, frames: [Frame], type: String?) {
            self.count = count
            self.bytes = bytes
            self.firstNanoseconds = firstNanoseconds
            self.lastNanoseconds = lastNanoseconds
            self.frames = frames
            self.type = type
        }
    }

    /// One surviving block, for `group`.
    public struct Block: Sendable {
        public var frames: [Frame]
        public var bytes: UInt64
        /// Nanoseconds after tracing started.
        public var time: UInt64
        public var type: String?

        public init(frames: [Frame], bytes: UInt64, time: UInt64, type: String?) {
            self.frames = frames
            self.bytes = bytes
            self.time = time
            self.type = type
        }
    }

    public var survivors: [Survivors]
    /// Counted by the probes; nil for tracemalloc, which counts neither.
    public var allocations: UInt64?
    public var frees: UInt64?
    public var lost: UInt64
    public var stacksLost: UInt64
    public var hits: UInt64?
    public var seconds: Double
    public var minimumAge: Double?
    /// What saw the allocations ("probes", "tracemalloc").
    public var via: String
    public var functions: [String]

    /// A report of `survivors` (any order; sorted here, biggest first), with no counts of
    /// allocations, frees or probe hits (the probes' init sets them).
    public init(via: String, seconds: Double, minimumAge: Double?, survivors: [Survivors]) {
        self.via = via
        self.seconds = seconds
        self.minimumAge = minimumAge
        self.survivors = survivors.sorted {
            ($0.bytes, $0.count, $1.frames.map(\.label).joined()) > ($1.bytes, $1.count, $0.frames.map(\.label).joined())
        }
        lost = 0
        stacksLost = 0
        functions = []
    }

    /// Merges blocks whose frames are equal into groups; a group's type is its blocks'
    /// most common known type (ties: the alphabetically first).
    public static func group(_ blocks: [Block]) -> [Survivors] {
        var groups: [[Frame]: Survivors] = [:]
        var typeCounts: [[Frame]: [String: Int]] = [:]
        for block in blocks {
            if let type = block.type { typeCounts[block.frames, default: [:]][type, default: 0] += 1 }
            if var group = groups[block.frames] {
                group.count += 1
                group.bytes += block.bytes
                group.firstNanoseconds = min(group.firstNanoseconds, block.time)
                group.lastNanoseconds = max(group.lastNanoseconds, block.time)
                groups[block.frames] = group
            } else {
                groups[block.frames] = Survivors(count: 1, bytes: block.bytes, firstNanoseconds: block.time, lastNanoseconds: block.time,
                                                 frames: block.frames, type: nil)
            }
        }
        return groups.map { frames, group in
            var group = group
            group.type = typeCounts[frames]?.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key
            return group
        }
    }

    /// The survivors of a probes trace: `result.blocks` by their resolved stacks;
    /// `minimumAge` (seconds) keeps only blocks at least that old at the end.
    public init(result: MemtraceResult, minimumAge: Double?, frames: (ProbedFrame) -> Frame) {
        var resolved: [UInt64: [Frame]] = [:]
        var blocks = [Block]()
        // The newest allocation time kept (an age beyond the clock's start keeps nothing).
        let cutoff = minimumAge.map { age -> UInt64 in
            let nanoseconds = UInt64(min(max(0, age), 1e9) * 1e9)
            return result.end > nanoseconds ? result.end - nanoseconds : 0
        }
        for block in result.blocks {
            if let cutoff, block.time > cutoff || cutoff == 0 { continue }
            let stack: [Frame]
            if let known = resolved[block.stack] {
                stack = known
            } else {
                if block.stack == 0 {
                    stack = [.marker("(thread \(block.tid): stack unknown)")]
                } else if let probed = result.stacks[block.stack] {
                    var decoded = probed.map(frames)
                    if result.truncatedStacks.contains(block.stack) { decoded.append(.marker("(more frames)")) }
                    stack = decoded.isEmpty ? [.marker("(no Python frame)")] : decoded
                } else {
                    stack = [.marker("(stack not kept: the stacks map was full)")]
                }
                resolved[block.stack] = stack
            }
            blocks.append(Block(frames: stack, bytes: block.size, time: block.time &- min(block.time, result.start), type: block.type))
        }
        self.init(via: "probes", seconds: Double(result.end &- result.start) / 1e9, minimumAge: minimumAge, survivors: MemtraceReport.group(blocks))
        allocations = result.allocations
        frees = result.frees
        lost = result.lost
        stacksLost = result.stacksLost
        hits = result.hits
        functions = result.functions
    }

    /// For people: a header, then each group (count, bytes, first/last time, the stack
    /// innermost first), at most `limit` groups.
    public func text(limit: Int = 50) -> String {
        let totalBytes = survivors.reduce(UInt64(0)) { $0 + $1.bytes }
        let totalCount = survivors.reduce(0) { $0 + $1.count }
        var out = "Traced \(String(format1: seconds)) s (via \(via): \(functions.joined(separator: ", ")))"
        if let allocations, let frees, let hits {
            out += ": \(allocations) allocations, \(frees) frees, \(lost) lost, \(hits) probe hits.\n"
        } else {
            out += ".\n"
        }
        out += "Alive at the end\(minimumAge.map { " and at least \(String(format1: $0)) s old" } ?? ""): "
        out += "\(totalCount) blocks, \(totalBytes) bytes, in \(survivors.count) stacks.\n"
        if stacksLost > 0 { out += "(\(stacksLost) stacks were not kept: the stacks map was full)\n" }
        for group in survivors.prefix(limit) {
            out += "\n\(group.count) blocks, \(group.bytes) bytes\(group.type.map { " (mostly \($0.escapingControlCharacters))" } ?? ""), allocated from \(String(format1: Double(group.firstNanoseconds) / 1e9)) s "
            out += "to \(String(format1: Double(group.lastNanoseconds) / 1e9)) s:\n"
            for frame in group.frames { out += "    " + frame.label.escapingControlCharacters + "\n" }
        }
        if survivors.count > limit { out += "\n(\(survivors.count - limit) more stacks; --json lists them all)\n" }
        return out
    }

    /// `{"survivors": [{"count", "bytes", "first_ms", "last_ms", "type", "frames": [...]}],
    /// "allocations", "frees", "lost", "via"}`, frames innermost first.
    public func json() -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("via", via)
        writer.key("seconds"); writer.number(seconds)
        writer.field("allocations", allocations)
        writer.field("frees", frees)
        writer.field("lost", lost)
        writer.field("stacks_lost", stacksLost)
        writer.field("probe_hits", hits)
        writer.key("min_age"); if let minimumAge { writer.number(minimumAge) } else { writer.null() }
        writer.key("survivors")
        writer.beginArray()
        for group in survivors {
            writer.beginObject()
            writer.field("count", group.count)
            writer.field("bytes", group.bytes)
            writer.key("first_ms"); writer.number(Double(group.firstNanoseconds) / 1e6)
            writer.key("last_ms"); writer.number(Double(group.lastNanoseconds) / 1e6)
            writer.key("type"); writer.string(group.type)
            DumpReport.writeStack(group.frames, defect: nil, to: &writer) { _, frame, json in
                json.field("kind", frame.kind.rawValue)
                DumpReport.writeLocation(frame, to: &json)
                json.field("module", frame.module)
            }
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        return writer.output + "\n"
    }
}

extension MemtraceReport {
    /// The survivors as a profile in bytes, for the writers of `OutputFormat` (folded, svg,
    /// speedscope, pprof): one sample per group, root first, weighing its bytes and
    /// standing for its blocks.
    public func profile(pid: Int32, command: String, pythonVersion: String?, startTime: Double) -> Profile {
        var metadata = ProfileMetadata(command: command, pid: pid, pythonVersion: pythonVersion, rate: 0,
                                       startTime: startTime, duration: seconds)
        metadata.unit = .bytes
        var profile = Profile(metadata: metadata)
        let thread = SampledThread(pid: pid, tid: nil, ident: 0, name: "allocations alive at the end (via \(via))")
        for group in survivors where group.bytes > 0 {
            profile.add(rootFirst: group.frames.reversed(), thread: thread, time: group.firstNanoseconds,
                        value: Int(clamping: group.bytes), events: group.count)
        }
        return profile
    }
}

private extension String {
    /// One decimal.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
