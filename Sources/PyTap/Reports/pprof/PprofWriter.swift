/// pprof's profile.proto (package perftools.profiles), gzip-compressed like `.pb.gz` files:
///
/// - sample_type `[("samples","count"), ("cpu","nanoseconds")]`, period_type
///   `("cpu","nanoseconds")`, period `1e9 / rate`;
/// - one Sample per distinct (stack, thread), values `[count, count * period]`, location
///   ids leaf first, labels `thread` (name), `tid` and `pid` (numbers);
/// - one Location per distinct frame with one Line (function id, line);
/// - one Function per distinct (name, system name, file, first line): name is the
///   qualname, filename the file; system name is the symbol for native and kernel frames,
///   `co_name` for Python frames whose qualname differs from it, else empty. (pprof
///   "simplifies" a name equal to its system name as if it were demangled C++, which
///   would turn `<module>` into nothing; a different or empty system name prevents it.)
/// - native frames point to a Mapping per object file (`Frame.module`), kernel frames to
///   one `[kernel.kallsyms]` Mapping, listed last so pprof does not take the kernel for
///   the main binary; Python and marker frames have none. Mappings say their functions
///   are already symbolized, so pprof does not try to.
/// - time_nanos, duration_nanos from the metadata; comment `[command]`.
///
/// A profile in bytes (memtrace's survivors) is a heap profile as Go writes them:
/// sample_type `[("inuse_objects","count"), ("inuse_space","bytes")]`, period_type
/// `("space","bytes")`, period 1, values `[blocks, bytes]`.
public struct PprofWriter: Sendable {
    public init() {}

    /// The compressed file contents.
    public func render(_ profile: Profile) throws -> [UInt8] {
        try Gzip.compress(makeProfile(profile).serialized())
    }

    /// The profile message, before serialization.
    public func makeProfile(_ profile: Profile) throws -> Pprof.Profile {
        let rate = profile.metadata.rate
        let inBytes = profile.metadata.unit == .bytes
        guard rate > 0 || inBytes else { throw ReportError.invalidRate(rate) }
        let period = inBytes ? 1 : profile.metadata.sampleIntervalNanoseconds

        var builder = Builder()
        var message = Pprof.Profile()
        if inBytes {
            message.sampleType = [builder.valueType("inuse_objects", "count"), builder.valueType("inuse_space", "bytes")]
            message.periodType = builder.valueType("space", "bytes")
        } else {
            message.sampleType = [builder.valueType("samples", "count"), builder.valueType("cpu", "nanoseconds")]
            message.periodType = builder.valueType("cpu", "nanoseconds")
        }
        message.period = period

        let threadKey = builder.string("thread")
        let tidKey = builder.string("tid")
        let pidKey = builder.string("pid")
        for (threadIndex, (thread, timeline)) in zip(profile.threads, profile.timelines).enumerated() {
            // (events, value) per stack: (samples, samples) for a CPU profile.
            var counts = [UInt32: (events: Int, value: Int)]()
            for (index, sample) in timeline.enumerated() {
                let weight = profile.weight(thread: threadIndex, sample: index)
                counts[sample.stack, default: (0, 0)].events += weight.events
                counts[sample.stack, default: (0, 0)].value += weight.value
            }

            var labels = [Pprof.Label]()
            var label = Pprof.Label()
            label.key = threadKey
            label.str = builder.string(thread.name ?? "Thread 0x" + String(thread.ident, radix: 16))
            labels.append(label)
            if let tid = thread.tid {
                label = Pprof.Label()
                label.key = tidKey
                label.num = Int64(tid)
                labels.append(label)
            }
            label = Pprof.Label()
            label.key = pidKey
            label.num = Int64(thread.pid)
            labels.append(label)

            for stack in counts.keys.sorted() {
                let count = counts[stack] ?? (0, 0)
                var sample = Pprof.Sample()
                sample.locationID = profile.stacks[stack].reversed().map { builder.location(for: $0, in: profile.frames) }
                sample.value = [Int64(count.events), Int64(count.value) * period]
                sample.label = labels
                message.sample.append(sample)
            }
        }

        message.timeNanos = PprofWriter.nanoseconds(profile.metadata.startTime)
        message.durationNanos = PprofWriter.nanoseconds(profile.metadata.duration)
        message.comment = [builder.string(profile.metadata.command)]
        builder.moveKernelMappingLast()
        message.mapping = builder.mappings
        message.location = builder.locations
        message.function = builder.functions
        message.stringTable = builder.strings
        return message
    }

    /// Seconds as whole nanoseconds, 0 when not representable. Whole seconds and the
    /// fraction are converted apart: `seconds * 1e9` would round an epoch time to 256 ns.
    static func nanoseconds(_ seconds: Double) -> Int64 {
        guard seconds.isFinite, abs(seconds) < 9.2e9 else { return 0 }
        let whole = seconds.rounded(.down)
        return Int64(whole) * 1_000_000_000 + Int64(((seconds - whole) * 1e9).rounded())
    }

    /// Interns strings, functions, mappings and locations, numbering them in order of first use.
    private struct Builder {
        var strings: [String] = [""]
        var stringIDs: [String: Int64] = ["": 0]
        var functions: [Pprof.Function] = []
        var functionIDs: [FunctionKey: UInt64] = [:]
        var mappings: [Pprof.Mapping] = []
        var mappingIDs: [String: UInt64] = [:]
        var locations: [Pprof.Location] = []
        var locationIDs: [UInt32: UInt64] = [:]

        struct FunctionKey: Hashable {
            var name: String
            var systemName: String
            var filename: String
            var startLine: Int
        }

        mutating func string(_ text: String) -> Int64 {
            if let id = stringIDs[text] { return id }
            let id = Int64(strings.count)
            strings.append(text)
            stringIDs[text] = id
            return id
        }

        mutating func valueType(_ type: String, _ unit: String) -> Pprof.ValueType {
            var value = Pprof.ValueType()
            value.type = string(type)
            value.unit = string(unit)
            return value
        }

        mutating func function(for frame: Frame) -> UInt64 {
            let systemName: String
            switch frame.kind {
            case .native, .kernel: systemName = frame.name
            case .python: systemName = frame.name == frame.qualname ? "" : frame.name
            case .marker: systemName = ""
            }
            let key = FunctionKey(name: frame.qualname, systemName: systemName, filename: frame.file ?? "",
                                  startLine: frame.functionLine ?? 0)
            if let id = functionIDs[key] { return id }
            var function = Pprof.Function()
            function.id = UInt64(functions.count + 1)
            function.name = string(key.name)
            function.systemName = string(key.systemName)
            function.filename = string(key.filename)
            function.startLine = Int64(key.startLine)
            functions.append(function)
            functionIDs[key] = function.id
            return function.id
        }

        mutating func mapping(for frame: Frame) -> UInt64 {
            let file: String
            switch frame.kind {
            case .native:
                guard let module = frame.module else { return 0 }
                file = module
            case .kernel:
                file = Builder.kernelMapping
            case .python, .marker:
                return 0
            }
            if let id = mappingIDs[file] { return id }
            var mapping = Pprof.Mapping()
            mapping.id = UInt64(mappings.count + 1)
            mapping.filename = string(file)
            mapping.hasFunctions = true
            mapping.hasFilenames = true
            mapping.hasLineNumbers = true
            mappings.append(mapping)
            mappingIDs[file] = mapping.id
            return mapping.id
        }

        static let kernelMapping = "[kernel.kallsyms]"

        /// Renumbers mappings so the kernel's comes last (pprof takes the first mapping
        /// that does not look like a library or a `[pseudo]` file for the main binary,
        /// else the first one).
        mutating func moveKernelMappingLast() {
            guard let kernelID = mappingIDs[Builder.kernelMapping], Int(kernelID) < mappings.count else { return }
            var newID = [UInt64: UInt64]()
            var reordered = mappings.filter { $0.id != kernelID } + mappings.filter { $0.id == kernelID }
            for index in reordered.indices {
                newID[reordered[index].id] = UInt64(index + 1)
                reordered[index].id = UInt64(index + 1)
            }
            mappings = reordered
            for index in locations.indices where locations[index].mappingID != 0 {
                locations[index].mappingID = newID[locations[index].mappingID] ?? 0
            }
            for (file, id) in mappingIDs { mappingIDs[file] = newID[id] ?? id }
        }

        mutating func location(for frameID: UInt32, in table: FrameTable) -> UInt64 {
            if let id = locationIDs[frameID] { return id }
            let frame = table[frameID]
            var line = Pprof.Line()
            line.functionID = function(for: frame)
            line.line = Int64(frame.line ?? 0)
            var location = Pprof.Location()
            location.id = UInt64(locations.count + 1)
            location.mappingID = mapping(for: frame)
            location.line = [line]
            locations.append(location)
            locationIDs[frameID] = location.id
            return location.id
        }
    }
}
