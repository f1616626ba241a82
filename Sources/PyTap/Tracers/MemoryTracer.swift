import CBPF

/// One function of CPython's object allocator that memtrace probes.
public struct AllocatorFunction: Sendable, Equatable {
    public enum Kind: UInt64, Sendable { case malloc = 0, calloc = 1, realloc = 2, free = 3 }
    public var name: String
    public var kind: Kind
    /// The first argument is the allocator's context (`_PyObject_Malloc(void *ctx, size_t n)`).
    public var takesContext: Bool
    /// Without it there is nothing to trace (malloc and free).
    public var required: Bool
}

/// The functions of one interpreter's object allocator, and the Python major version
/// whose allocator they are.
public struct AllocatorFamily: Sendable {
    public var major: Int
    /// The public function that only jumps through the allocator table to `functions`
    /// (unless LTO copied the allocator into it).
    public var publicWrapper: String?
    public var functions: [AllocatorFunction]

    /// 3.x: the static pymalloc functions behind PyObject_Malloc & co. and PyMem_Malloc
    /// (`.symtab` or the debug file; `NAME.lto_priv.N` in LTO builds), taking the allocator's
    /// context first. Not the public PyObject_Malloc: LTO builds inline it into its callers.
    /// 2.7: PyObject_Malloc & co. are the allocator (exported).
    public static let all: [AllocatorFamily] = [
        AllocatorFamily(major: 3, publicWrapper: "PyObject_Malloc", functions: [
            AllocatorFunction(name: "_PyObject_Malloc", kind: .malloc, takesContext: true, required: true),
            AllocatorFunction(name: "_PyObject_Calloc", kind: .calloc, takesContext: true, required: false),
            AllocatorFunction(name: "_PyObject_Realloc", kind: .realloc, takesContext: true, required: true),
            AllocatorFunction(name: "_PyObject_Free", kind: .free, takesContext: true, required: true)]),
        AllocatorFamily(major: 2, publicWrapper: nil, functions: [
            AllocatorFunction(name: "PyObject_Malloc", kind: .malloc, takesContext: false, required: true),
            AllocatorFunction(name: "PyObject_Realloc", kind: .realloc, takesContext: false, required: true),
            AllocatorFunction(name: "PyObject_Free", kind: .free, takesContext: false, required: true)]),
    ]

    /// The C library's allocator (`--all`): what CPython's raw allocator, 2.7's buffers and
    /// extensions use. Blocks the object allocator passes on to it (3.x: more than 512
    /// bytes) are seen twice at one address, which `live` keeps once.
    public static let system = AllocatorFamily(major: 0, publicWrapper: nil, functions: [
        AllocatorFunction(name: "malloc", kind: .malloc, takesContext: false, required: true),
        AllocatorFunction(name: "calloc", kind: .calloc, takesContext: false, required: false),
        AllocatorFunction(name: "realloc", kind: .realloc, takesContext: false, required: true),
        AllocatorFunction(name: "free", kind: .free, takesContext: false, required: true)])

    /// The C library's allocator in the libc a live target maps, with where each function lies.
    public static func locateSystem(in target: LiveProcessTarget) throws -> [(AllocatorFunction, UprobeTarget)] {
        let libc: LoadedObject
        do {
            libc = try UprobeTargets.object(named: "libc.so.6", in: target)
        } catch {
            throw MemtraceUnavailable("--all probes glibc's malloc and free, but process \(target.pid) maps no libc.so.6")
        }
        let found = system.functions.compactMap { function in
            UprobeTarget.locate(function.name, in: libc, pid: target.pid).map { (function, $0) }
        }
        let names = Set(found.map(\.0.name))
        guard system.functions.allSatisfy({ !$0.required || names.contains($0.name) }) else {
            throw MemtraceUnavailable("no symbol of malloc, realloc or free in \(libc.path)")
        }
        return found
    }

    /// The allocator of a Python `major` found in `object`, with where each function lies;
    /// nil when a required function has no symbol.
    public static func locate(major: Int, in object: LoadedObject, pid: Int32) -> [(AllocatorFunction, UprobeTarget)]? {
        guard let family = all.first(where: { $0.major == major }) else { return nil }
        let found = family.functions.compactMap { function in
            UprobeTarget.locate(function.name, in: object, pid: pid).map { (function, $0) }
        }
        let names = Set(found.map(\.0.name))
        return family.functions.allSatisfy({ !$0.required || names.contains($0.name) }) ? found : nil
    }
}

/// Why memtrace could not start: one line naming the cause.
public struct MemtraceUnavailable: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// How memtrace traces.
public struct MemtraceOptions: Sendable {
    /// Seconds to trace; nil: until stopped.
    public var duration: Double?
    /// Live allocations kept at most (each costs the kernel ~100 bytes); more are counted lost.
    public var maximumAllocations = 1 << 19
    /// What one probe hit costs the target, for the slowdown estimate (a trap into the
    /// kernel and back: ~10 µs on a small VM, 1–3 µs on bare metal).
    public var secondsPerHit = 10e-6
    /// Also probe the C library's malloc, calloc, realloc and free (`--all`).
    public var systemAllocator = false

    public init(duration: Double? = nil) { self.duration = duration }
}

/// What memtrace reports while it runs.
public struct MemtraceProgress: Sendable {
    public var elapsed: Double
    public var hits: UInt64
    public var hitsPerSecond: Double
    /// How much slower the probes make a thread that allocates at this rate.
    public var estimatedSlowdown: Double
}

/// The raw outcome of a trace: the blocks still allocated at the end, the stacks they
/// were made by, and the counters.
public struct MemtraceResult {
    public struct Block: Sendable {
        public var address: UInt64; public var size: UInt64; public var time: UInt64; public var stack: UInt64; public var tid: UInt32
        /// The type of the object the block holds, read at the end (`BlockTypeReader`).
        public var type: String?
    }
    public var blocks: [Block] = []
    public var stacks: [UInt64: [ProbedFrame]] = [:]
    public var truncatedStacks = Set<UInt64>()
    public var start: UInt64 = 0
    public var end: UInt64 = 0
    public var hits: UInt64 = 0
    public var allocations: UInt64 = 0
    public var frees: UInt64 = 0
    public var lost: UInt64 = 0
    public var stacksLost: UInt64 = 0
    public var targetExited = false
    public var interrupted = false
    public var functions: [String] = []
}

/// Traces the object allocator of a live Python process with uprobes and uretprobes
/// (bpf/memtrace.bpf.c): every allocation's address, size, time, thread and Python stack
/// kept in the kernel until it is freed. Nothing is written to the target: the probes
/// belong to pytap's file descriptors and vanish with them, however pytap ends.
public final class MemoryTracer {
    public let target: PythonTarget
    public let options: MemtraceOptions
    private let object: BPFObject
    private let reader: PythonReader
    private var threadStates: ThreadStateMap?
    public let functions: [(AllocatorFunction, UprobeTarget)]
    /// What makes the trace incomplete (said before it starts).
    public let warnings: [String]

    /// Finds the allocator, loads the program and hands it the layout. Throws
    /// `MemtraceUnavailable` or `NativeCaptureUnavailable` (BPF refused) saying why.
    public init(target: PythonTarget, options: MemtraceOptions) throws {
        guard target.process != nil else { throw MemtraceUnavailable("memtrace needs a live process") }
        self.target = target
        self.options = options
        reader = try PythonReader(target: target)
        guard let runtime = target.runtimeObject else { throw MemtraceUnavailable("the interpreter's object file is unknown") }
        guard let functions = AllocatorFamily.locate(major: target.version.major, in: runtime, pid: target.pid) else {
            throw MemtraceUnavailable("no symbol of the object allocator (\(AllocatorFamily.all.first { $0.major == target.version.major }?.functions.first?.name ?? "_PyObject_Malloc")) in \(runtime.path): install the interpreter's debug symbols")
        }
        self.functions = try functions + (options.systemAllocator ? MemoryTracer.systemFunctions(of: target) : [])
        warnings = AllocatorFamily.all.first { $0.major == target.version.major }.map { MemoryTracer.inliningWarnings(runtime, family: $0) } ?? []
        guard let stack = reader.probedStackConfig else {
            throw MemtraceUnavailable("the layout of Python \(target.version) lacks a field the in-kernel stack walk needs")
        }
        object = try BPFObject(name: "memtrace", hex: BPFMemtraceProgramObject.hex)
        try object.setEntries(ofMap: "live", to: options.maximumAllocations)
        try object.load()
        let config = pytap_memtrace_config(stack: stack.config, frame_read_bytes: UInt32(stack.frameReadBytes))
        try object.map("config").update(UInt32(0), config)
        threadStates = ThreadStateMap(map: try object.map("thread_states"), reader: reader, target: target)
    }

    private static func systemFunctions(of target: PythonTarget) throws -> [(AllocatorFunction, UprobeTarget)] {
        guard let live = target.source as? LiveProcessTarget else { throw MemtraceUnavailable("memtrace needs a live process") }
        return try AllocatorFamily.locateSystem(in: live)
    }

    /// Attaches the probes and traces until the duration passes, `shouldStop` says so or
    /// the target exits; then detaches and reads what survived.
    public func run(shouldStop: () -> Bool, progress: (MemtraceProgress) -> Void) throws -> MemtraceResult {
        var result = MemtraceResult()
        result.functions = functions.map(\.0.name)
        refreshThreads()
        let pid = target.pid
        // Return probes first: an entry seen without its return only leaves a pending call.
        for (function, location) in functions where function.kind != .free {
            try object.attachUprobe(program: "on_return", pid: pid, path: location.path, offset: location.fileOffset,
                                    returnProbe: true, cookie: cookie(function))
        }
        // A free has no return probe, so its probe may move past a leading `test` the kernel
        // would single-step (EmulatedProbeSite); the others share the entry with their uretprobe.
        for (function, location) in functions {
            let offset = function.kind == .free ? location.entryProbeOffset : location.fileOffset
            try object.attachUprobe(program: "on_call", pid: pid, path: location.path, offset: offset,
                                    cookie: cookie(function))
        }
        defer { object.detachAll() }
        let counters = try object.map("counters")
        result.start = MonotonicClock.now()
        let stopAt = options.duration.map { result.start + UInt64((min(max($0, 0), 1e9) * 1e9).rounded(.up)) }
        var lastRefresh = result.start, lastReport = result.start, lastHits: UInt64 = 0
        while true {
            if shouldStop() { result.interrupted = true; break }
            let now = MonotonicClock.now()
            if let stopAt, now >= stopAt { break }
            if !target.source.isAlive { result.targetExited = true; break }
            if now - lastRefresh >= 200_000_000 {
                lastRefresh = now
                refreshThreads()
            }
            if now - lastReport >= 1_000_000_000 {
                let hits = counters.lookup(UInt32(PYTAP_COUNT_HITS.rawValue), as: UInt64.self) ?? 0
                let rate = Double(hits - min(hits, lastHits)) / (Double(now - lastReport) / 1e9)
                let busy = min(rate * options.secondsPerHit, 0.99)
                progress(MemtraceProgress(elapsed: Double(now - result.start) / 1e9, hits: hits, hitsPerSecond: rate,
                                          estimatedSlowdown: 1 / (1 - busy)))
                lastHits = hits
                lastReport = now
            }
            let wake = min(now + 50_000_000, stopAt ?? .max)
            MonotonicClock.sleep(until: wake)
        }
        object.detachAll()
        result.end = MonotonicClock.now()
        func counter(_ which: pytap_memtrace_counter) -> UInt64 { counters.lookup(UInt32(which.rawValue), as: UInt64.self) ?? 0 }
        result.hits = counter(PYTAP_COUNT_HITS)
        result.allocations = counter(PYTAP_COUNT_ALLOCATIONS)
        result.frees = counter(PYTAP_COUNT_FREES)
        result.lost = counter(PYTAP_COUNT_LOST)
        result.stacksLost = counter(PYTAP_COUNT_STACKS_LOST)
        let live = try object.map("live")
        for address in live.keys(as: UInt64.self, limit: options.maximumAllocations) {
            guard let allocation = live.lookup(address, as: pytap_allocation.self) else { continue }
            result.blocks.append(.init(address: address, size: allocation.size, time: allocation.time_ns,
                                       stack: allocation.stack, tid: allocation.tid))
        }
        nameTypes(of: &result.blocks)
        let stacks = try object.map("stacks")
        for key in Set(result.blocks.map(\.stack)) where key != 0 {
            guard let stack = stacks.lookup(key, as: pytap_stack.self) else { continue }
            result.stacks[key] = decode(stack)
            if stack.truncated != 0 { result.truncatedStacks.insert(key) }
        }
        return result
    }

    /// Reads the object header of each surviving block (it is still allocated, so still
    /// what it was, unless freed since the probes went).
    private func nameTypes(of blocks: inout [MemtraceResult.Block]) {
        guard let typeType = target.runtimeObject?.address(ofSymbol: "PyType_Type"),
              let types = BlockTypeReader(memory: target.memory, layout: target.layout, typeType: typeType) else { return }
        for (index, name) in types.typeNames(of: blocks.map { ($0.address, $0.size) }).enumerated() { blocks[index].type = name }
    }

    /// The frames of a kept stack, innermost first (frames that run no Python code left out).
    private func decode(_ stack: pytap_stack) -> [ProbedFrame] {
        var frames = [ProbedFrame]()
        withUnsafeBytes(of: stack.frames) { raw in
            let all = raw.bindMemory(to: pytap_stack_frame.self)
            for frame in all.prefix(min(Int(stack.count), Int(PYTAP_MEMTRACE_FRAMES))) {
                let decoded = reader.probedFrame(code: frame.code, instruction: frame.instruction, owner: frame.owner)
                if decoded != .notPython { frames.append(decoded) }
            }
        }
        return frames
    }

    /// A probed frame's location, read from the target now.
    public func location(of frame: ProbedFrame) -> Frame {
        switch frame {
        case .frame(let raw):
            if let location = try? reader.location(of: raw) { return Frame(python: location) }
            return .marker("<code object 0x\(String(raw.code, radix: 16)) unreadable>")
        case .unreadable(let code): return .marker("<code object 0x\(String(code, radix: 16)) unreadable>")
        case .notPython: return .marker("<not Python>")
        }
    }

    /// An LTO build (Debian's, Ubuntu's) copies the allocator into its callers behind a
    /// check of the allocator table (speculative devirtualization): those copies run no
    /// probed function. The public PyObject_Malloc then holds a copy too, so it is much
    /// larger than the jump through the table it is otherwise.
    static func inliningWarnings(_ object: LoadedObject, family: AllocatorFamily) -> [String] {
        guard let name = family.publicWrapper, let wrapper = object.symbol(named: name), wrapper.size > 0x80 else { return [] }
        return ["this interpreter was built with link-time optimization, which copies the object allocator into many of its callers; "
                + "probes see only the allocations made through the allocator's functions, so counts are lower bounds"]
    }

    private func cookie(_ function: AllocatorFunction) -> UInt64 {
        function.kind.rawValue | (function.takesContext ? UInt64(PYTAP_MEMTRACE_CONTEXT_ARGUMENT) : 0)
    }

    /// Keeps the program's map of thread states current (new threads, gone ones).
    private func refreshThreads() { threadStates?.refresh() }
}
