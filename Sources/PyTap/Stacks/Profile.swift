/// Frames interned to small integers, so a sample costs a few bytes per frame.
public struct FrameTable: Sendable {
    public private(set) var frames: [Frame] = []
    private var ids: [Frame: UInt32] = [:]

    public init() {}

    public mutating func id(for frame: Frame) -> UInt32 {
        if let id = ids[frame] { return id }
        let id = UInt32(frames.count)
        frames.append(frame)
        ids[frame] = id
        return id
    }

    public subscript(id: UInt32) -> Frame { frames[Int(id)] }
    public var count: Int { frames.count }
}

/// Stacks (frame ids, root first) interned to small integers.
public struct StackTable: Sendable {
    public private(set) var stacks: [[UInt32]] = []
    private var ids: [[UInt32]: UInt32] = [:]

    public init() {}

    public mutating func id(for rootFirst: [UInt32]) -> UInt32 {
        if let id = ids[rootFirst] { return id }
        let id = UInt32(stacks.count)
        stacks.append(rootFirst)
        ids[rootFirst] = id
        return id
    }

    public subscript(id: UInt32) -> [UInt32] { stacks[Int(id)] }
    public var count: Int { stacks.count }
}

/// A thread (of a process) that samples belong to. Its identity is (pid, tid, ident); the
/// name is what the thread was last known as (threads are often named after they start).
public struct SampledThread: Hashable, Sendable {
    public var pid: Int32
    public var tid: Int32?
    public var ident: UInt64
    public var name: String?

    public init(pid: Int32, tid: Int32?, ident: UInt64, name: String?) {
        self.pid = pid
        self.tid = tid
        self.ident = ident
        self.name = name
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.pid == rhs.pid && lhs.tid == rhs.tid && lhs.ident == rhs.ident
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(pid)
        hasher.combine(tid)
        hasher.combine(ident)
    }

    /// "MainThread (tid 1234)" or "Thread 0x7f… (tid 1234)".
    public var label: String {
        let base = name ?? "Thread 0x\(String(ident, radix: 16))"
        if let tid { return "\(base) (tid \(tid))" }
        return base
    }
}

/// What was known of a thread when it was sampled: one flag of each pair when the sampler
/// knew the fact, neither when it did not (the sampler only looks when asked to).
public struct SampleState: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let onCPU = SampleState(rawValue: 1 << 0)
    public static let offCPU = SampleState(rawValue: 1 << 1)
    public static let holdsGIL = SampleState(rawValue: 1 << 2)
    public static let withoutGIL = SampleState(rawValue: 1 << 3)
}

/// What a profile's samples weigh: one sampling interval each (a CPU profile), or a
/// number of bytes each (memtrace's surviving allocations).
public enum ProfileUnit: String, Sendable {
    case samples, bytes

    /// "3 samples", "1 byte".
    public func amount(_ value: Int) -> String {
        let noun = self == .samples ? "sample" : "byte"
        return "\(value) \(noun)" + (value == 1 ? "" : "s")
    }
}

/// Facts about a recording that writers put in titles and metadata.
public struct ProfileMetadata: Sendable {
    /// The profiled command line (or the attach target's).
    public var command: String
    public var pid: Int32
    public var pythonVersion: String?
    /// Requested sampling rate, samples per second per thread.
    public var rate: Int
    /// Wall-clock start, seconds since the Unix epoch.
    public var startTime: Double
    /// Recording length in seconds.
    public var duration: Double
    /// Whether lines were replaced by function first lines (`--function`).
    public var byFunction: Bool
    /// What sample weights count (`Profile.add(...weight:events:)`).
    public var unit = ProfileUnit.samples

    public init(command: String, pid: Int32, pythonVersion: String?, rate: Int, startTime: Double, duration: Double, byFunction: Bool = false) {
        self.command = command
        self.pid = pid
        self.pythonVersion = pythonVersion
        self.rate = rate
        self.startTime = startTime
        self.duration = duration
        self.byFunction = byFunction
    }

    /// Nanoseconds one sample stands for.
    public var sampleIntervalNanoseconds: Int64 { rate > 0 ? Int64(1_000_000_000 / rate) : 0 }
}

/// The samples of one recording: every sample is (thread, stack, state, time), stacks interned.
/// Writers read it; none of them changes it.
public struct Profile: Sendable {
    public var frames = FrameTable()
    public var stacks = StackTable()
    /// Per thread, in the order threads were first seen: (stack id, state, time offset in ns);
    /// the state fits in the padding, a sample still takes 16 bytes.
    public private(set) var threads: [SampledThread] = []
    public private(set) var timelines: [[(stack: UInt32, state: SampleState, time: UInt64)]] = []
    private var threadIndex: [SampledThread: Int] = [:]
    /// Per thread, parallel to its timeline once any sample of it weighs other than one
    /// (empty until then, so CPU profiles pay nothing).
    private var weights: [[SampleWeight]] = []
    public var metadata: ProfileMetadata

    /// A sample's weight in `metadata.unit`, and how many events it stands for (memtrace:
    /// the bytes and count of the blocks that survived at one stack).
    public struct SampleWeight: Sendable, Equatable {
        public var value: Int
        public var events: Int
        public static let one = SampleWeight(value: 1, events: 1)
    }

    public init(metadata: ProfileMetadata) {
        self.metadata = metadata
    }

    /// A profile whose samples will refer to already interned frames and stacks.
    public init(metadata: ProfileMetadata, frames: FrameTable, stacks: StackTable) {
        self.metadata = metadata
        self.frames = frames
        self.stacks = stacks
    }

    /// Records one sample: `rootFirst` frames, taken `time` ns after the recording started.
    public mutating func add(rootFirst: [Frame], thread: SampledThread, time: UInt64, state: SampleState = []) {
        var ids = [UInt32]()
        ids.reserveCapacity(rootFirst.count)
        for frame in rootFirst { ids.append(frames.id(for: frame)) }
        add(rootFirstIDs: ids, thread: thread, time: time, state: state)
    }

    /// Records one sample whose frames are already interned in `frames`.
    public mutating func add(rootFirstIDs ids: [UInt32], thread: SampledThread, time: UInt64, state: SampleState = []) {
        add(stack: stacks.id(for: ids), thread: thread, time: time, state: state)
    }

    /// Records one sample of an already interned stack.
    public mutating func add(stack: UInt32, thread: SampledThread, time: UInt64, state: SampleState = []) {
        add(stack: stack, thread: thread, time: time, state: state, weight: .one)
    }

    /// Records one sample weighing `value` (in `metadata.unit`) for `events` events, e.g.
    /// the surviving bytes of `events` blocks allocated at one stack.
    public mutating func add(rootFirst: [Frame], thread: SampledThread, time: UInt64, value: Int, events: Int) {
        let ids = rootFirst.map { frames.id(for: $0) }
        add(stack: stacks.id(for: ids), thread: thread, time: time, state: [], weight: SampleWeight(value: value, events: events))
    }

    private mutating func add(stack: UInt32, thread: SampledThread, time: UInt64, state: SampleState, weight: SampleWeight) {
        let index: Int
        if let known = threadIndex[thread] {
            index = known
            if let name = thread.name, threads[known].name != name { threads[known].name = name }
        } else {
            index = threads.count
            threads.append(thread)
            timelines.append([])
            threadIndex[thread] = index
            weights.append([])
        }
        if weight != .one || !weights[index].isEmpty {
            if weights[index].count < timelines[index].count {
                weights[index] += Array(repeating: .one, count: timelines[index].count - weights[index].count)
            }
            weights[index].append(weight)
        }
        timelines[index].append((stack, state, time))
    }

    /// The weight of sample `sample` of thread `thread` (indices into `timelines`).
    public func weight(thread: Int, sample: Int) -> SampleWeight {
        weights[thread].isEmpty ? .one : weights[thread][sample]
    }

    public var sampleCount: Int { timelines.reduce(0) { $0 + $1.count } }

    /// Samples (weights, in `metadata.unit`) per stack id, over all threads.
    public func countsByStack() -> [UInt32: Int] {
        var counts = [UInt32: Int]()
        for (thread, timeline) in timelines.enumerated() {
            if weights[thread].isEmpty {
                for sample in timeline { counts[sample.stack, default: 0] += 1 }
            } else {
                for (sample, weight) in zip(timeline, weights[thread]) { counts[sample.stack, default: 0] += weight.value }
            }
        }
        return counts
    }

    /// Functions by self samples (leaf frame), most first: all lines of a function count
    /// together, each function shown at its first line (`Frame.atFunctionLevel`).
    public func topSelf(_ limit: Int) -> [(frame: Frame, samples: Int)] {
        var selfCounts = [Frame: Int]()
        for (stack, count) in countsByStack() {
            if let leaf = stacks[stack].last { selfCounts[frames[leaf].atFunctionLevel, default: 0] += count }
        }
        return selfCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.label < $1.key.label }
            .prefix(limit).map { ($0.key, $0.value) }
    }
}
