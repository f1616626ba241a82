/// What both native samplers (`NativeSampler`, `PtraceNativeSampler`) keep of a recording:
/// the interned frames and stacks, the statistics, and the Python frames decoded once per
/// code object and instruction.
struct NativeSampleBook {
    var frames = FrameTable()
    var stacks = StackTable()
    var statistics = SamplerStatistics()
    private var pythonFrames: PythonFrameDecoder
    private var seenThreads = Set<SampledThread>()

    init(byFunction: Bool) {
        pythonFrames = PythonFrameDecoder(byFunction: byFunction)
    }

    /// Counts one sample of `thread`.
    mutating func countSample(of thread: SampledThread) {
        if seenThreads.insert(thread).inserted { statistics.threads = seenThreads.count }
        statistics.samples += 1
    }

    mutating func countError(_ kind: String) {
        statistics.errors += 1
        statistics.errorKinds[kind, default: 0] += 1
    }

    /// The Python frames of a walk with its eval calls; nil, counted as torn or as an error,
    /// when the walk is inconsistent or a code object cannot be read.
    mutating func pythonCalls(of raw: RawStack, reader: PythonReader) -> PythonEvalCalls? {
        if let defect = raw.defect {
            if case .changedWhileReading = defect { statistics.torn += 1 } else { countError(defect.kind) }
            return nil
        }
        guard let calls = pythonFrames.calls(of: raw, reader: reader) else {
            countError("code object unreadable")
            return nil
        }
        return calls
    }

    /// Forgets the Python frames decoded from the code objects at `addresses` (dropped by the
    /// reader's code cache: another object lives there now).
    mutating func forgetPythonFrames(ofCodes addresses: [UInt64]) {
        if !addresses.isEmpty { pythonFrames.forget(codes: Set(addresses)) }
    }

    /// The stack id of frames given innermost first, under `root` (a thread marker) if any.
    mutating func stackID(root: UInt32?, frames innermostFirst: [Frame]) -> UInt32 {
        var stack: [UInt32] = []
        stack.reserveCapacity(innermostFirst.count + 1)
        if let root { stack.append(root) }
        for frame in innermostFirst.reversed() { stack.append(frames.id(for: frame)) }
        return stacks.id(for: stack)
    }
}
