import Glibc

/// A thread state as read from the interpreter's list.
public struct ThreadState: Sendable {
    public let address: UInt64
    public let interpreter: UInt64
    /// `threading.get_ident()`: the pthread handle.
    public let ident: UInt64
    /// `native_thread_id` (3.11+), else nil until resolved through the pthread structure.
    public let nativeThreadID: Int32?
    /// The copy of the structure the walk starts from.
    let bytes: RemoteBytes
}

/// Where thread states run: see `PythonReader.placement(of:in:)`.
public struct ThreadPlacement: Sendable {
    /// Host thread id (as /proc names it) by thread-state address, for those resolved.
    public var tids: [UInt64: Int32] = [:]
    /// States of threads still starting: their ident and ids are their creator's.
    public var starting: Set<UInt64> = []
    /// States whose OS thread is running another interpreter's thread state.
    public var suspended: Set<UInt64> = []

    public init() {}
}

/// One Python frame as found in memory: its code object and the byte offset of the
/// instruction it is at. The same pair a BPF-side reader emits; decoded in user space.
public struct RawFrame: Hashable, Sendable {
    public var code: UInt64
    public var instructionOffset: Int

    public init(code: UInt64, instructionOffset: Int) {
        self.code = code
        self.instructionOffset = instructionOffset
    }
}

/// A decoded Python frame: function names, file and line.
public struct PythonLocation: Hashable, Sendable {
    public var name: String
    public var qualname: String
    public var filename: String
    public var line: Int?
    public var firstLine: Int
}

/// A thread's Python frames, innermost first, as found in memory.
public struct RawStack: Sendable {
    public var frames: [RawFrame]
    public var defect: WalkDefect?
    /// How many times the walk was repeated because the stack changed under it.
    public var retries: Int
    /// The address of each frame of `frames` (`PyFrameObject` or `_PyInterpreterFrame`).
    public var frameAddresses: [UInt64] = []
    /// Outer frames not walked (a stack deeper than `maximumDepth`): `frames` are its innermost.
    public var cut: CutFrames? = nil
    /// Where each C-level call of the eval loop ends, innermost call first: the number of
    /// `frames` run by it and the calls inside it (a call running no visible frame repeats
    /// the previous count). From entry and shim frames, which `frames` leaves out; what the
    /// native merge needs to replace each eval-loop frame by exactly the frames it runs.
    public var evalCallEnds: [Int] = []
    /// The thread state copy the last walk started from (read again before each retry):
    /// what else is judged of the same instant (`--mode exception`) is judged on it.
    public var threadState: ThreadState? = nil
}

/// The outer frames of a stack too deep to walk whole, counted up to a limit.
public struct CutFrames: Equatable, Sendable {
    /// Frames counted past the kept ones (frames in memory, shim frames included).
    public var count: Int
    /// The chain went on beyond what was counted.
    public var moreThanCounted: Bool

    public init(count: Int, moreThanCounted: Bool) {
        self.count = count
        self.moreThanCounted = moreThanCounted
    }
}

/// Where a walk starts: the runtime's symbols in the target's address space.
public struct RuntimeAddresses: Sendable {
    /// `_PyRuntime` (3.7+).
    public var runtime: UInt64?
    /// The variable `interp_head` (2.7, 3.6).
    public var interpHead: UInt64?
    /// The variable `_PyThreadState_Current` (2.7, 3.6).
    public var currentThreadState: UInt64?
    /// `PyCode_Type`, to check code pointers.
    public var codeType: UInt64?
    /// `PyFrame_Type`, to check frame objects (≤3.10).
    public var frameType: UInt64?
    /// gcmodule.c's `static int collecting` (2.7, 3.6), when the binary has its local symbol.
    public var gcCollecting: UInt64?
    /// `_Py_NoneStruct`: an exception slot holding None holds no exception.
    public var noneObject: UInt64?

    public init(runtime: UInt64? = nil, interpHead: UInt64? = nil, currentThreadState: UInt64? = nil,
                codeType: UInt64? = nil, frameType: UInt64? = nil, gcCollecting: UInt64? = nil, noneObject: UInt64? = nil) {
        self.runtime = runtime
        self.interpHead = interpHead
        self.currentThreadState = currentThreadState
        self.codeType = codeType
        self.frameType = frameType
        self.gcCollecting = gcCollecting
        self.noneObject = noneObject
    }
}

/// Reads threads and Python stacks of a running interpreter without stopping it. All
/// per-version knowledge comes from the target's `PythonLayout`; this type only walks.
/// It needs only a memory, a layout and the runtime's addresses, so tests run it on a
/// fake memory.
public final class PythonReader {
    public let memory: RemoteMemory
    public let layout: PythonLayout
    public let addresses: RuntimeAddresses
    public let objects: ObjectReader
    public let codes: CodeObjectCache
    public let tids: PthreadTIDResolver
    /// Bytes copied of a thread state: up to the last field any reader uses.
    let threadStateSize: Int
    let frameSize: Int
    private var threadNameCache = ThreadNameCache()
    /// The thread lists as `allThreadStates` last read them.
    private var lastThreadChain: ThreadListChain?
    /// Frames each thread's last walk read one by one (see `FramePrefetch`).
    private var prefetch = FramePrefetch()
    /// Read in the walk's batch after its frames: the identities of the code objects the
    /// thread's last walk met, then the live innermost frame. Nil once the walk read
    /// anything outside that batch (then the check after the walk reads on its own).
    private var readAhead: (identities: IdentitiesReadAhead, liveTop: LiveTopRead?)?

    /// Frames walked at most per thread; deeper stacks keep their innermost frames and
    /// count the rest (up to `maximumCountedDepth`).
    public var maximumDepth = 4096
    public var maximumCountedDepth = 4 * 4096
    /// Walk again this many times when a stack changed while being read.
    public var maximumRetries = 3
    /// A walk that named a frame by a cached code object found replaced is walked again
    /// once more than `maximumRetries` allows: a reader of copies made at one instant (0
    /// retries) still names the frame by the code object the copy shows.
    public var retriesAfterReplacedCode = 0
    /// Called before the second and later retries with the retry's number (2, 3, …): a
    /// thread preempted halfway through a call or return shows the same torn stack to
    /// back-to-back walks until it runs again.
    public var pauseBeforeRetry: ((Int) -> Void)?

    /// Retries for a target that keeps running: the first comes at once, the later ones
    /// wait 50, 100, 200, 400, 800 µs, then 1.6 ms each, so a thread preempted mid-call (or
    /// busy in a stretch where its stack keeps changing) can finish it; it is never stopped.
    public func retryWithBackoff(times: Int) {
        maximumRetries = times
        pauseBeforeRetry = { retry in
            _ = MonotonicClock.sleep(until: MonotonicClock.now() + (25_000 << UInt64(min(retry - 1, 6))))
        }
    }
    /// Most interpreters and thread states followed.
    public static let maximumThreads = 4096
    public static let maximumInterpreters = 256
    /// Largest data-stack chunk copied in one read (3.11+).
    public static let maximumChunkBytes = 4 << 20

    public init(memory: RemoteMemory, layout: PythonLayout, addresses: RuntimeAddresses) throws {
        self.memory = memory
        self.layout = layout
        self.addresses = addresses
        self.objects = ObjectReader(memory: memory, layout: layout)
        self.codes = try CodeObjectCache(objects: objects, layout: layout)
        self.codes.codeType = addresses.codeType
        self.tids = PthreadTIDResolver(memory: memory)
        let threadFields: [LayoutField] = [.tstateNext, .tstateInterp, .tstateFrame, .tstateCFrame, .tstateThreadID,
                                           .tstateNativeThreadID, .tstateDatastackChunk, .tstateDatastackTop,
                                           .tstateExcType27, .tstateExcInfo, .tstateCurrentException]
        threadStateSize = threadFields.compactMap { layout[$0] }.max().map { $0 + 8 } ?? 64
        let frameFields: [LayoutField]
        switch layout.traits.frameModel {
        case .frameObjects: frameFields = [.objectType, .frameBack, .frameCode, .frameLasti]
        case .interpreterFrames: frameFields = [.iframePrevious, .iframeCode, .iframeInstruction, .iframeOwner, .iframeIsEntry]
        }
        frameSize = frameFields.compactMap { layout[$0] }.max().map { $0 + 8 } ?? 64
    }

    /// A reader of a target (live process, core file or fake).
    public convenience init(target: PythonTarget) throws {
        try self.init(memory: target.memory, layout: target.layout, addresses: target.addresses)
    }

    // MARK: Interpreters and threads

    /// Addresses of all interpreters (the main one first).
    public func interpreters() throws -> [UInt64] {
        var head: UInt64 = 0
        switch layout.traits.interpreterRoot {
        case .runtime:
            guard let runtime = addresses.runtime else { return [] }
            let offset = try layout.require(.runtimeInterpretersHead)
            head = try reading("interpreter list head (_PyRuntime.interpreters.head)", at: runtime &+ UInt64(offset)) {
                try memory.readPointer(runtime &+ UInt64(offset))
            }
        case .interpHeadSymbol:
            if let variable = addresses.interpHead {
                head = try memory.readPointer(variable)
            } else if let current = addresses.currentThreadState {
                let tstate = try memory.readPointer(current)
                if tstate != 0 { head = try memory.readPointer(tstate &+ UInt64(try layout.require(.tstateInterp))) }
            }
        }
        var result = [UInt64]()
        var seen = Set<UInt64>()
        var interp = head
        let nextOffset = UInt64(try layout.require(.interpNext))
        while interp != 0, result.count < PythonReader.maximumInterpreters, seen.insert(interp).inserted {
            result.append(interp)
            interp = try reading("interpreter state", at: interp) { try memory.readPointer(interp &+ nextOffset) }
        }
        return result
    }

    /// The interpreter's id (`interp.id`: 0 for the main one), nil where the version has none.
    public func interpreterID(_ interpreter: UInt64) -> Int64? {
        guard let offset = layout[.interpID] else { return nil }
        return try? memory.readInteger(interpreter &+ UInt64(offset), as: Int64.self)
    }

    /// The thread states of one interpreter, in the interpreter's list order.
    ///
    /// The list is read while threads start and exit. A thread state read through a
    /// pointer taken just before its thread unlinked and freed it is garbage where malloc
    /// keeps its own links (the first 16 bytes: `prev` and `next` on 3.x, `next` and
    /// `interp` on 2.7), so every state must point back to the one before it and to its
    /// interpreter. A list that fails that, or leads to unreadable memory, is read again.
    public func threadStates(of interpreter: UInt64) throws -> [ThreadState] {
        var lastError: Error?
        for attempt in 0..<PythonReader.threadListAttempts {
            // The list changes in bursts (a thread starting or exiting): back off a little.
            if attempt >= 2 { usleep(UInt32(min(25 << (attempt - 2), 2_000))) }
            do {
                return try threadStatesOnce(of: interpreter)
            } catch let error as ThreadListChanged {
                lastError = error
            } catch let error as StructureReadError where error.what == PythonReader.threadStateWhat && error.cause.isUnmapped {
                lastError = error
            }
        }
        if let changed = lastError as? ThreadListChanged {
            throw ThreadListKeptChanging(interpreter: interpreter, attempts: PythonReader.threadListAttempts, last: changed)
        }
        throw lastError ?? ThreadListKeptChanging(interpreter: interpreter, attempts: 0, last: nil)
    }

    /// Times a thread list is read before pytap gives up on it.
    static let threadListAttempts = 12
    static let threadStateWhat = "thread state"

    private func threadStatesOnce(of interpreter: UInt64) throws -> [ThreadState] {
        var result = [ThreadState]()
        var seen = Set<UInt64>()
        let headOffset = UInt64(try layout.require(.interpThreadsHead))
        var address = try reading("thread list of the interpreter", at: interpreter) { try memory.readPointer(interpreter &+ headOffset) }
        let nextOffset = try layout.require(.tstateNext)
        let interpOffset = try layout.require(.tstateInterp)
        let prevOffset = layout[.tstatePrev]
        let identOffset = try layout.require(.tstateThreadID)
        let nativeOffset = layout[.tstateNativeThreadID]
        var previous: UInt64 = 0
        while address != 0, result.count < PythonReader.maximumThreads, seen.insert(address).inserted {
            let bytes = try reading(PythonReader.threadStateWhat, at: address) { try memory.readStruct(address, count: threadStateSize) }
            let owner = try bytes.pointer(interpOffset)
            guard owner == interpreter else {
                throw ThreadListChanged(state: address, field: "interp", found: owner, expected: interpreter)
            }
            if let prevOffset {
                let back = try bytes.pointer(prevOffset)
                guard back == previous else { throw ThreadListChanged(state: address, field: "prev", found: back, expected: previous) }
            }
            var native: Int32?
            if let nativeOffset {
                let value = try bytes.i64(nativeOffset)
                if value > 0 && value < Int64(Int32.max) { native = Int32(value) }
            }
            result.append(ThreadState(address: address, interpreter: interpreter, ident: try bytes.u64(identOffset),
                                      nativeThreadID: native, bytes: bytes))
            previous = address
            address = try bytes.pointer(nextOffset)
        }
        return result
    }

    /// Thread states of every interpreter. While the lists are unchanged since the last
    /// call, one batched read (`ThreadListChain`); else link by link.
    public func allThreadStates() throws -> [ThreadState] {
        try allThreadStates(readingFirst: []).states
    }

    /// `allThreadStates()`, with `ranges` read before the thread states, in the same system
    /// call while the thread lists are unchanged.
    public func allThreadStates(readingFirst ranges: [(address: UInt64, count: Int)]) throws
        -> (states: [ThreadState], first: [Result<[UInt8], MemoryReadError>]) {
        if let chain = lastThreadChain, let (states, first) = threadStates(following: chain, stateSize: threadStateSize, readingFirst: ranges) {
            return (states, first)
        }
        let first = ranges.isEmpty ? [] : memory.readMany(ranges)
        return (try allThreadStatesLinkByLink(), first)
    }

    private func allThreadStatesLinkByLink() throws -> [ThreadState] {
        lastThreadChain = nil
        var all = [ThreadState]()
        var chain = [(address: UInt64, threads: [UInt64])]()
        for interpreter in try interpreters() {
            let states = try threadStates(of: interpreter)
            all.append(contentsOf: states)
            chain.append((interpreter, states.map(\.address)))
        }
        lastThreadChain = interpreterListHeadLocation().map { ThreadListChain(headLocation: $0, interpreters: chain) }
        return all
    }

    /// Which OS thread each thread state runs on (host tids, for /proc), and which thread
    /// states are not the one running on their OS thread.
    public func placement(of threads: [ThreadState], in table: ThreadTable) -> ThreadPlacement {
        var placement = ThreadPlacement()
        // `native_thread_id` where the version has it, else through the pthread structure;
        // both in the target's PID namespace.
        let unresolved = threads.filter { $0.nativeThreadID == nil }.map(\.ident)
        let byIdent = unresolved.isEmpty ? [:] : tids.tids(for: unresolved, liveTIDs: table.targetTIDs)
        for thread in threads {
            if let tid = thread.nativeThreadID ?? byIdent[thread.ident], let host = table.hostTID(forTargetTID: tid) {
                placement.tids[thread.address] = host
            }
        }
        // Several states with one ident share an OS thread: a thread still starting (its
        // state was made by its creator and carries the creator's ids until it runs), or a
        // thread inside a call into another interpreter (3.12 `run_string`). The one running
        // has frames; when several have, the newest interpreter's (highest id; CPython's
        // list is newest first) is the innermost call.
        var byThread = [UInt64: [Int]]()
        for (index, thread) in threads.enumerated() where thread.ident != 0 { byThread[thread.ident, default: []].append(index) }
        for indices in byThread.values where indices.count > 1 {
            let withFrames = indices.filter { ((try? topFrame(of: threads[$0])) ?? 0) != 0 }
            let newest = withFrames.max { (interpreterID(threads[$0].interpreter) ?? 0) < (interpreterID(threads[$1].interpreter) ?? 0) }
            guard let running = newest ?? indices.last else { continue }
            for index in indices where index != running {
                let thread = threads[index]
                if thread.interpreter == threads[running].interpreter {
                    placement.starting.insert(thread.address)
                    placement.tids[thread.address] = nil
                } else {
                    placement.suspended.insert(thread.address)
                }
            }
        }
        return placement
    }

    /// The thread state holding the GIL, nil when none does (or it cannot be told).
    public func gilHolder(interpreter: UInt64) -> UInt64? {
        guard let range = gilStateRange(interpreter: interpreter),
              let bytes = try? memory.readBytes(range.address, count: range.count) else { return nil }
        return range.holder(fromBytes: bytes)
    }

    // MARK: Stacks

    /// Address of the innermost frame of a thread, from its copied state (3.11–3.12 go
    /// through the copied `cframe` pointer: one read of `current_frame`).
    func topFrame(of thread: ThreadState) throws -> UInt64 {
        if let offset = layout[.tstateFrame] { return try thread.bytes.pointer(offset) }
        return try currentFrame(throughCFrameOf: thread)
    }

    /// The innermost frame now, with one read: `tstate->current_frame` re-read (≤3.10,
    /// 3.13+), or `current_frame` through the copied `cframe` pointer on 3.11–3.12 (a newer
    /// nested `cframe` only adds frames above the ones read).
    private func liveTopFrame(of thread: ThreadState) throws -> UInt64 {
        if let offset = layout[.tstateFrame] { return try memory.readPointer(thread.address &+ UInt64(offset)) }
        return try currentFrame(throughCFrameOf: thread)
    }

    /// Where `liveTopFrame` reads the innermost frame pointer when that is one read
    /// (`tstate->frame` / `current_frame`), so it can join a batch; nil on 3.11–3.12, whose
    /// read through the cframe must be followed by a re-check of `tstate->cframe`.
    private func liveTopFrameLocation(of thread: ThreadState) -> UInt64? {
        layout[.tstateFrame].map { thread.address &+ UInt64($0) }
    }

    /// The ranges `liveTopFrame` reads, in its order, to join a batch: the frame pointer
    /// (≤3.10, 3.13+), or on 3.11–3.12 `current_frame` through the copied cframe and then
    /// the live `tstate->cframe` (see `currentFrame(throughCFrameOf:)`). Empty when the
    /// copied cframe is NULL or the layout lacks the fields.
    func liveTopFrameRanges(of thread: ThreadState) -> [(address: UInt64, count: Int)] {
        if let location = liveTopFrameLocation(of: thread) { return [(location, 8)] }
        guard let cframeOffset = layout[.tstateCFrame], let currentOffset = layout[.cframeCurrentFrame],
              let cframe = try? thread.bytes.pointer(cframeOffset), cframe != 0 else { return [] }
        return [(cframe &+ UInt64(currentOffset), 8), (thread.address &+ UInt64(cframeOffset), 8)]
    }

    /// `liveTopFrame`'s answer from the results of reading `liveTopFrameRanges`; nil when a
    /// read failed (the caller reads on its own).
    func liveTopFrame(of thread: ThreadState, from results: ArraySlice<Result<[UInt8], MemoryReadError>>) -> LiveTopRead? {
        var pointers = [UInt64]()
        for result in results {
            guard case .success(let bytes) = result, let pointer = try? RemoteBytes(address: 0, bytes: bytes).pointer(0) else { return nil }
            pointers.append(pointer)
        }
        switch pointers.count {
        case 1: return .frame(pointers[0])
        case 2:
            guard let cframeOffset = layout[.tstateCFrame], let copied = try? thread.bytes.pointer(cframeOffset) else { return nil }
            return PythonReader.cframe(copied, isStillLiveGiven: pointers[1], threadState: thread.address) ? .frame(pointers[0]) : .cframeGone
        default: return nil
        }
    }

    /// 3.11–3.12: `tstate->cframe->current_frame`, the cframe pointer taken from the copy.
    /// The cframe lives on the C stack of the eval-loop call that made it: once that call
    /// has returned, the copied pointer reads whatever the stack holds now. So the live
    /// `tstate->cframe` is re-read after `current_frame`, and a copied cframe that is no
    /// longer on the thread's chain of eval calls is a torn read.
    private func currentFrame(throughCFrameOf thread: ThreadState) throws -> UInt64 {
        let cframeOffset = try layout.require(.tstateCFrame)
        let cframe = try thread.bytes.pointer(cframeOffset)
        if cframe == 0 { return 0 }
        let frame = try memory.readPointer(cframe &+ UInt64(try layout.require(.cframeCurrentFrame)))
        let live = try memory.readPointer(thread.address &+ UInt64(cframeOffset))
        guard PythonReader.cframe(cframe, isStillLiveGiven: live, threadState: thread.address) else { throw StackChangedWhileRead() }
        return frame
    }

    /// Whether a cframe copied from a thread state is still one of the thread's eval calls,
    /// given the live `tstate->cframe`. Nested calls' cframes lie deeper on the C stack (at
    /// lower addresses: it grows down on x86_64 and aarch64), so a thread that went on
    /// into C and back into Python leaves the copied one valid; the root cframe is inside
    /// the thread state and always valid. A copied stack cframe with the live one shallower
    /// (or the root) belongs to a call that returned.
    static func cframe(_ copied: UInt64, isStillLiveGiven live: UInt64, threadState: UInt64) -> Bool {
        if copied == live { return true }
        func insideThreadState(_ address: UInt64) -> Bool { address &- threadState < 8192 }
        if insideThreadState(copied) { return true }
        if insideThreadState(live) || live == 0 { return false }
        return live < copied
    }

    /// The thread's Python frames, innermost first, checked for consistency: if the stack
    /// changed under the walk it is walked again, up to `maximumRetries` times.
    public func rawStack(of thread: ThreadState) throws -> RawStack {
        var attempt = 0
        var state = thread
        var replacedCodeRetries = 0
        while true {
            // Each attempt starts from a copy of the thread state made for it. A pointer read
            // from it may be stale by the time it is followed (the cframe on the C stack, a
            // popped frame): such a read failing is a stack that changed, not an error.
            var walk = ChainWalk.Result(frames: [], addresses: [], frameAddresses: [], evalCallEnds: [], defect: .changedWhileReading)
            if let top = try unlessTorn({ try topFrame(of: state) }) {
                codes.beginUse()
                readAhead = nil
                let objectsRead = codes.objectsRead
                walk = self.walk(from: top, thread: state)
                if codes.objectsRead != objectsRead { readAhead = nil }
                prefetch.rememberCodes(codes.usedSinceBeginUse + walk.frames.map(\.code), thread: state.address)
                // A cached code object freed and its address reused: walk again with the new one.
                // The live innermost frame is re-read in the same system call, after the
                // identities — or both were, after the frames, in the walk's own batch.
                let check: (dropped: Int, extra: LiveTopRead?)
                if let ahead = readAhead, let dropped = codes.checkIdentity(alsoOf: walk.frames.lazy.map(\.code), readAhead: ahead.identities) {
                    check = (dropped, ahead.liveTop)
                } else {
                    let checked = try codes.checkIdentity(alsoOf: walk.frames.lazy.map(\.code),
                                                          alongWith: liveTopFrameLocation(of: state).map { ($0, 8) })
                    check = (checked.dropped, checked.extra.flatMap { liveTopFrame(of: state, from: [$0][...]) })
                }
                readAhead = nil
                if check.dropped > 0 {
                    walk.defect = .changedWhileReading
                    if replacedCodeRetries < retriesAfterReplacedCode {
                        replacedCodeRetries += 1
                        continue
                    }
                }
                switch walk.defect {
                case nil:
                    if try unlessTorn({ try isStillCurrent(walk.addresses, thread: state, liveTop: check.extra) }) != true {
                        walk.defect = .changedWhileReading
                    }
                case .unreadable?, .cycle?:
                    // Garbage met on a stack that has moved on since is a torn read (a
                    // popped frame's slot or freed code object), not a broken target.
                    if try unlessTorn({ try liveTopFrame(of: state) }) != top { walk.defect = .changedWhileReading }
                case .changedWhileReading?:
                    break
                }
            }
            let problem = walk.defect
            guard problem != nil, attempt < maximumRetries else {
                return RawStack(frames: walk.frames, defect: problem, retries: attempt, frameAddresses: walk.frameAddresses,
                                cut: walk.cut, evalCallEnds: walk.evalCallEnds, threadState: state)
            }
            attempt += 1
            if attempt > 1 { pauseBeforeRetry?(attempt) }
            state = ThreadState(address: thread.address, interpreter: thread.interpreter, ident: thread.ident,
                                nativeThreadID: thread.nativeThreadID,
                                bytes: try reading("thread state", at: thread.address) { try memory.readStruct(thread.address, count: threadStateSize) })
        }
    }

    /// The thread state read again (the walk starts from a copy of it).
    public func reread(_ thread: ThreadState) throws -> ThreadState {
        ThreadState(address: thread.address, interpreter: thread.interpreter, ident: thread.ident,
                    nativeThreadID: thread.nativeThreadID,
                    bytes: try reading("thread state", at: thread.address) { try memory.readStruct(thread.address, count: threadStateSize) })
    }

    /// `body`'s result, or nil when one of its reads failed; the target being gone still throws.
    private func unlessTorn<T>(_ body: () throws -> T) throws -> T? {
        do {
            return try body()
        } catch {
            if memoryReadError(in: error) == .processGone { throw error }
            return nil
        }
    }

    /// Whether the thread's live innermost frame is, or leads within a few frames to, one of
    /// the frames read (the frames below a live frame cannot have changed).
    /// `liveTop`: the live innermost frame pointer when already read (at `liveTopFrameLocation`).
    private func isStillCurrent(_ walked: [UInt64], thread: ThreadState, liveTop: LiveTopRead?) throws -> Bool {
        var current: UInt64
        switch liveTop {
        case .frame(let pointer)?: current = pointer
        case .cframeGone?: throw StackChangedWhileRead()
        case nil: current = try liveTopFrame(of: thread)
        }
        guard let first = walked.first else { return current == 0 }
        if current == first { return true }
        let known = Set(walked.prefix(8))
        let previousOffset: Int
        switch layout.traits.frameModel {
        case .frameObjects: previousOffset = try layout.require(.frameBack)
        case .interpreterFrames: previousOffset = try layout.require(.iframePrevious)
        }
        for _ in 0..<8 {
            if current == 0 { return false }
            if known.contains(current) { return true }
            current = try memory.readPointer(current &+ UInt64(previousOffset))
        }
        return false
    }

    /// Walks the frame chain from `top`: the frames found, the addresses walked (shim
    /// frames included), a defect when incomplete and the outer frames cut when too deep.
    private func walk(from top: UInt64, thread: ThreadState) -> ChainWalk.Result {
        switch layout.traits.frameModel {
        case .frameObjects(let lastiUnit):
            return walkFrameObjects(from: top, thread: thread, lastiUnit: lastiUnit)
        case .interpreterFrames:
            return walkInterpreterFrames(from: top, thread: thread)
        }
    }

    private func walkFrameObjects(from top: UInt64, thread: ThreadState, lastiUnit: Int) -> ChainWalk.Result {
        var walk = ChainWalk(maximumDepth: maximumDepth)
        var address = top
        let ahead = readAheadRanges(of: thread)
        let batch = prefetch.read(thread: thread.address, frameSize: frameSize, memory: memory, trailing: ahead.ranges)
        let prefetched = batch.frames
        keepReadAhead(ahead, results: batch.trailing, thread: thread)
        var readAlone = [UInt64]()
        defer { prefetch.remember(readAlone, thread: thread.address) }
        do {
            let backOffset = try layout.require(.frameBack)
            let codeOffset = try layout.require(.frameCode)
            let lastiOffset = try layout.require(.frameLasti)
            let typeOffset = try layout.require(.objectType)
            while address != 0 {
                if walk.isFull { return walk.result(nil, cut: countFrames(from: address, previousOffset: backOffset)) }
                if let defect = walk.visit(address) { return walk.result(defect) }
                let frame: RemoteBytes
                do {
                    frame = try prefetched[address] ?? readOutsideBatch(address)
                } catch {
                    return walk.result(.unreadable(address: address, what: "frame"))
                }
                readAlone.append(address)
                if let frameType = addresses.frameType, try frame.pointer(typeOffset) != frameType {
                    return walk.result(.unreadable(address: address, what: "frame (not a frame object)"))
                }
                let lasti = Int(try frame.i32(lastiOffset))
                // The code object is read now, inside the walk that the consistency check
                // covers: a frame freed meanwhile holds no reference to it any more.
                let code = try frame.pointer(codeOffset)
                do {
                    _ = try codes.code(at: code)
                } catch is StackChangedWhileRead {
                    return walk.result(.changedWhileReading)
                } catch {
                    return walk.result(.unreadable(address: code, what: "code object"))
                }
                walk.append(RawFrame(code: code, instructionOffset: lasti < 0 ? -1 : lasti * lastiUnit))
                // Each frame object is run by a call of its own.
                walk.endEvalCall()
                address = try frame.pointer(backOffset)
            }
        } catch {
            return walk.result(.unreadable(address: address, what: "frame"))
        }
        return walk.result(nil)
    }

    private func walkInterpreterFrames(from top: UInt64, thread: ThreadState) -> ChainWalk.Result {
        var walk = ChainWalk(maximumDepth: maximumDepth)
        var address = top
        let (chunk, prefetched) = copyDataStack(of: thread, top: top)
        var readAlone = [UInt64]()
        defer { prefetch.remember(readAlone, thread: thread.address) }
        do {
            let previousOffset = try layout.require(.iframePrevious)
            let codeOffset = try layout.require(.iframeCode)
            let instructionOffset = try layout.require(.iframeInstruction)
            let ownerOffset = layout[.iframeOwner]
            let isEntryOffset = layout[.iframeIsEntry]
            let firstNonPythonOwner = layout[.firstNonPythonFrameOwner]
            let tagMask = ~layout.traits.codeReferenceTagBits
            let ownedByGenerator = UInt8(truncatingIfNeeded: try layout.require(.frameOwnedByGenerator))
            let codeUnit = try layout.require(.codeUnitSize)
            let lowestOffset = -layout.traits.instructionPointerLead * codeUnit
            while address != 0 {
                if walk.isFull { return walk.result(nil, cut: countFrames(from: address, previousOffset: previousOffset)) }
                if let defect = walk.visit(address) { return walk.result(defect) }
                // Frames in the copied chunk are read in place; others (generators) from memory.
                let frame: RemoteBytes
                let base: Int
                if let chunk, chunk.contains(address, count: frameSize) {
                    frame = chunk
                    base = Int(address - chunk.address)
                } else {
                    do {
                        frame = try prefetched[address] ?? readOutsideBatch(address)
                    } catch {
                        return walk.result(.unreadable(address: address, what: "interpreter frame"))
                    }
                    readAlone.append(address)
                    base = 0
                }
                let next = try frame.pointer(base + previousOffset)
                defer { address = next }
                var owner: UInt8 = 0
                if let ownerOffset { owner = try frame.u8(base + ownerOffset) }
                let endsEvalCall: Bool
                switch layout.traits.evalCalls {
                case .framePerCall: endsEvalCall = true
                case .entryFlag: endsEvalCall = try isEntryOffset.map { try frame.u8(base + $0) != 0 } ?? false
                case .entryShim:
                    // 3.15 roots every thread's chain in a base frame owned by the interpreter
                    // that lives inside the thread state: it ends no eval call.
                    let isBaseFrame = next == 0 && address &- thread.address < 8192
                    endsEvalCall = !isBaseFrame && (firstNonPythonOwner.map { Int(owner) == $0 } ?? false)
                }
                defer { if endsEvalCall { walk.endEvalCall() } }
                // Shim/entry frames owned by the C stack or the interpreter run no Python code.
                if let firstNonPythonOwner, Int(owner) >= firstNonPythonOwner { continue }
                let code = try frame.pointer(base + codeOffset) & tagMask
                if code == 0 {
                    // A frame of zeros (no code, no caller) is memory that was never copied — a
                    // core whose writer could not read that page — not the thread's first frame.
                    if next == 0 && owner == 0 { return walk.result(.unreadable(address: address, what: "interpreter frame (all zero)")) }
                    continue
                }
                let codeObject: CodeObject
                do {
                    guard let found = try codes.codeIfCode(at: code) else { continue }
                    codeObject = found
                } catch is StackChangedWhileRead {
                    return walk.result(.changedWhileReading)
                } catch {
                    return walk.result(.unreadable(address: code, what: "code object"))
                }
                let instruction = try frame.pointer(base + instructionOffset)
                let offset = Int(Int64(bitPattern: instruction &- codeObject.instructionsStart))
                // An instruction outside its code object means the frame slot was reused
                // while it was copied (a call returned and another began at the same place).
                if let length = codeObject.instructionBytes, offset < lowestOffset || offset >= length {
                    return walk.result(.changedWhileReading)
                }
                // A frame still in its prologue is not yet visible to Python (_PyFrame_IsIncomplete).
                if owner != ownedByGenerator && offset / codeUnit < codeObject.firstTraceable { continue }
                walk.append(RawFrame(code: code, instructionOffset: offset))
            }
        } catch {
            return walk.result(.unreadable(address: address, what: "interpreter frame"))
        }
        return walk.result(nil)
    }

    /// Counts the frames of the chain from `address` on, following `previousOffset`, up to
    /// `maximumCountedDepth - maximumDepth` (a cycle or an unreadable link ends the count).
    private func countFrames(from address: UInt64, previousOffset: Int) -> CutFrames {
        readAhead = nil
        let limit = max(0, maximumCountedDepth - maximumDepth)
        var count = 0
        var current = address
        while current != 0 && count < limit {
            count += 1
            guard let next = try? memory.readPointer(current &+ UInt64(previousOffset)) else { break }
            current = next
        }
        return CutFrames(count: count, moreThanCounted: current != 0 && count >= limit)
    }

    /// Copies the used part of the thread's current data-stack chunk (3.11+), so the frames
    /// in it are walked locally, and the frames outside it that the thread's last walk read,
    /// in one read.
    /// The copy reaches the innermost frame too when that was pushed after the thread state
    /// was copied (3.11–3.12 read it later, through the cframe), so it is read from the same copy.
    private func copyDataStack(of thread: ThreadState, top topFrame: UInt64) -> (chunk: RemoteBytes?, frames: [UInt64: RemoteBytes]) {
        var range: (address: UInt64, count: Int)?
        if let chunkOffset = layout[.tstateDatastackChunk], let topOffset = layout[.tstateDatastackTop],
           let chunk = try? thread.bytes.pointer(chunkOffset), var top = try? thread.bytes.pointer(topOffset),
           chunk != 0, top > chunk {
            let limit = chunk &+ UInt64(PythonReader.maximumChunkBytes)
            if topFrame >= top && topFrame < limit - UInt64(frameSize) { top = topFrame &+ UInt64(frameSize) }
            if top - chunk <= UInt64(PythonReader.maximumChunkBytes) { range = (chunk, Int(top - chunk)) }
        }
        let ahead = readAheadRanges(of: thread)
        let batch = prefetch.read(thread: thread.address, frameSize: frameSize, memory: memory, alongWith: range, trailing: ahead.ranges)
        keepReadAhead(ahead, results: batch.trailing, thread: thread)
        return (batch.chunk, batch.frames)
    }

    /// A frame the walk's batch did not copy, read on its own (the identities read ahead
    /// no longer come after every read of the walk).
    private func readOutsideBatch(_ address: UInt64) throws -> RemoteBytes {
        readAhead = nil
        return try memory.readStruct(address, count: frameSize)
    }

    /// The ranges read after the frames in a walk's batch (see `readAhead`).
    private func readAheadRanges(of thread: ThreadState) -> (codes: [CodeObject], ranges: [(address: UInt64, count: Int)], liveTop: Int) {
        var (codes, ranges) = codes.identityRanges(of: prefetch.codes(of: thread.address))
        let liveTop = liveTopFrameRanges(of: thread)
        ranges.append(contentsOf: liveTop)
        return (codes, ranges, liveTop.count)
    }

    private func keepReadAhead(_ ahead: (codes: [CodeObject], ranges: [(address: UInt64, count: Int)], liveTop: Int),
                               results: ArraySlice<Result<[UInt8], MemoryReadError>>, thread: ThreadState) {
        guard results.count == ahead.ranges.count, !ahead.codes.isEmpty else { return }
        let identities = results.dropLast(ahead.liveTop)
        readAhead = (codes.identitiesReadAhead(of: ahead.codes, from: identities),
                     ahead.liveTop == 0 ? nil : liveTopFrame(of: thread, from: results.suffix(ahead.liveTop)))
    }

    // MARK: Locations

    /// Where a raw frame is in the source: its code object's names and file, and the line.
    public func location(of raw: RawFrame) throws -> PythonLocation {
        let code = try codes.code(at: raw.code)
        return PythonLocation(name: code.name, qualname: code.qualname, filename: code.filename,
                              line: code.line(atByteOffset: raw.instructionOffset), firstLine: code.firstLine)
    }

    // MARK: Thread names

    /// Names of threads known to the `threading` module, by ident.
    public func threadNames(interpreter: UInt64) -> [UInt64: String] {
        threadNameCache.names(reader: objects, layout: layout, interpreter: interpreter)
    }
}

/// A pointer followed from a copy no longer means what it did when copied.
struct StackChangedWhileRead: Error {}

/// A thread state in an interpreter's list does not point back to the state before it or
/// to its interpreter: it was freed after the pointer to it was read, or is being linked.
struct ThreadListChanged: Error, Sendable {
    var state: UInt64
    var field: String
    var found: UInt64
    var expected: UInt64
}

/// An interpreter's thread list was inconsistent at every read.
public struct ThreadListKeptChanging: Error, CustomStringConvertible, Sendable {
    public var interpreter: UInt64
    public var attempts: Int
    var last: ThreadListChanged?

    public var description: String {
        var text = "the thread list of the interpreter at \(hexAddress(interpreter)) was inconsistent in \(attempts) reads"
        if let last {
            text += " (the thread state at \(hexAddress(last.state)) has \(last.field) \(hexAddress(last.found)), not \(hexAddress(last.expected)))"
        }
        return text + ": threads start and exit too fast to read it, or its memory is damaged; try again"
    }
}

/// The live innermost frame as read in a batch: its address, or (3.11–3.12) the copied
/// cframe's eval call has returned, so the stack changed.
enum LiveTopRead {
    case frame(UInt64)
    case cframeGone
}

/// Reads `threading._active` ({ident: Thread}) and each Thread's name, remembering where
/// the dict lives so later refreshes skip the module lookup.
struct ThreadNameCache {
    private var activeDicts: [UInt64: UInt64] = [:]

    mutating func names(reader: ObjectReader, layout: PythonLayout, interpreter: UInt64) -> [UInt64: String] {
        guard let active = activeDict(reader: reader, layout: layout, interpreter: interpreter),
              let entries = try? reader.dictEntries(active) else { return [:] }
        var names = [UInt64: String]()
        for (key, thread) in entries.prefix(PythonReader.maximumThreads) {
            guard let ident = try? reader.unsignedInteger(key) else { continue }
            // 3.x: Thread._name; 2.7: the mangled Thread.__name.
            for attribute in ["_name", "_Thread__name"] {
                if let value = try? reader.attribute(thread, named: attribute),
                   let name = try? reader.string(value, maximumLength: 1024) {
                    names[ident] = name
                    break
                }
            }
        }
        return names
    }

    private mutating func activeDict(reader: ObjectReader, layout: PythonLayout, interpreter: UInt64) -> UInt64? {
        if let cached = activeDicts[interpreter], (try? reader.typeNameOf(cached)) == "dict" { return cached }
        guard let modulesOffset = layout[.interpModules],
              let modules = try? reader.memory.readPointer(interpreter &+ UInt64(modulesOffset)), modules != 0,
              let module = try? reader.dictLookup(modules, key: "threading"),
              let dictOffset = layout[.moduleDict],
              let dict = try? reader.memory.readPointer(module &+ UInt64(dictOffset)), dict != 0,
              let active = try? reader.dictLookup(dict, key: "_active") else { return nil }
        activeDicts[interpreter] = active
        return active
    }
}

/// Bookkeeping of one walk down a frame chain: the addresses visited, the frames found,
/// and cycle detection without hashing (Brent's algorithm: compare each address with one
/// remembered at power-of-two steps), so a cycle is found within twice its size.
struct ChainWalk {
    let maximumDepth: Int
    var frames: [RawFrame] = []
    var frameAddresses: [UInt64] = []
    var addresses: [UInt64] = []
    var evalCallEnds: [Int] = []
    /// Frames found before each step: a cycle's repeated frames are cut off with it.
    private var framesBefore: [Int] = []
    private var tortoise: UInt64 = 0
    private var power = 1
    private var sinceTortoise = 0

    init(maximumDepth: Int) {
        self.maximumDepth = maximumDepth
        frames.reserveCapacity(64)
        addresses.reserveCapacity(64)
        framesBefore.reserveCapacity(64)
    }

    /// Whether `maximumDepth` frames were walked: the rest of the chain is only counted.
    var isFull: Bool { addresses.count >= maximumDepth }

    /// Records a step to `address`; returns a defect when the chain loops.
    mutating func visit(_ address: UInt64) -> WalkDefect? {
        if !addresses.isEmpty && address == tortoise {
            cutRepetition(repeated: address, cycleLength: sinceTortoise + 1)
            return .cycle(address: address)
        }
        sinceTortoise += 1
        if sinceTortoise == power {
            tortoise = address
            power *= 2
            sinceTortoise = 0
        }
        framesBefore.append(frames.count)
        addresses.append(address)
        return nil
    }

    /// Keeps the chain up to the first address seen twice. The chain so far plus `repeated`
    /// ends in a loop of `cycleLength` steps; the first repetition is the first step equal
    /// to the one `cycleLength` before it.
    private mutating func cutRepetition(repeated: UInt64, cycleLength: Int) {
        let count = addresses.count
        func step(_ index: Int) -> UInt64 { index < count ? addresses[index] : repeated }
        var first = 0
        while first + cycleLength < count && step(first) != step(first + cycleLength) { first += 1 }
        let end = first + cycleLength
        guard end < count else { return }
        frames.removeLast(frames.count - framesBefore[end])
        frameAddresses.removeLast(frameAddresses.count - framesBefore[end])
        addresses.removeLast(count - end)
        evalCallEnds.removeAll { $0 > frames.count }
    }

    struct Result {
        var frames: [RawFrame]
        var addresses: [UInt64]
        /// The address of each frame of `frames`.
        var frameAddresses: [UInt64]
        var evalCallEnds: [Int]
        var defect: WalkDefect?
        var cut: CutFrames?
    }

    func result(_ defect: WalkDefect?, cut: CutFrames? = nil) -> Result {
        Result(frames: frames, addresses: addresses, frameAddresses: frameAddresses, evalCallEnds: evalCallEnds,
               defect: defect, cut: cut)
    }

    /// The C-level eval call that ran the frames found so far (and not yet ended) ends here.
    mutating func endEvalCall() {
        evalCallEnds.append(frames.count)
    }

    /// Adds a frame found at the address visited last.
    mutating func append(_ frame: RawFrame) {
        frames.append(frame)
        frameAddresses.append(addresses.last ?? 0)
    }
}

/// The frames a thread's last walk read one by one (outside the data-stack chunk: the
/// C-stack entry frames of 3.12+, 3.15's base frame inside the thread state, generator
/// frames; ≤3.10 every frame object). A stack that did not move has them at the same
/// addresses, so they are read again in one batch at the start of the next walk (with the
/// chunk), and the walk uses those copies instead of a read each. A copy is only ever of
/// a frame the walk reaches by its pointers, inside the window the consistency check covers.
struct FramePrefetch {
    private var frames: [UInt64: [UInt64]] = [:]
    /// The code objects each thread's last walk met, whose identities are read ahead.
    private var codes: [UInt64: [UInt64]] = [:]
    /// Frames remembered per thread, and threads remembered.
    static let maximumFrames = 256
    static let maximumThreads = PythonReader.maximumThreads

    mutating func remember(_ addresses: [UInt64], thread: UInt64) {
        if frames[thread] == nil && frames.count >= FramePrefetch.maximumThreads { frames.removeAll(keepingCapacity: true) }
        frames[thread] = Array(addresses.prefix(FramePrefetch.maximumFrames))
    }

    /// Kept sorted and unique (sorting, not hashing: a walk's few code objects).
    mutating func rememberCodes(_ addresses: [UInt64], thread: UInt64) {
        if codes[thread] == nil && codes.count >= FramePrefetch.maximumThreads { codes.removeAll(keepingCapacity: true) }
        var unique = addresses.sorted()
        var kept = 0
        for address in unique where kept == 0 || unique[kept - 1] != address {
            unique[kept] = address
            kept += 1
        }
        unique.removeLast(unique.count - min(kept, FramePrefetch.maximumFrames))
        codes[thread] = unique
    }

    func codes(of thread: UInt64) -> [UInt64] { codes[thread] ?? [] }

    /// The thread's remembered frames (those readable), read in one system call after
    /// `range`, and then `trailing` (their results).
    func read(thread: UInt64, frameSize: Int, memory: RemoteMemory, alongWith range: (address: UInt64, count: Int)? = nil,
              trailing: [(address: UInt64, count: Int)] = [])
        -> (chunk: RemoteBytes?, frames: [UInt64: RemoteBytes], trailing: ArraySlice<Result<[UInt8], MemoryReadError>>) {
        let known = frames[thread] ?? []
        var ranges = [(address: UInt64, count: Int)]()
        ranges.reserveCapacity(known.count + 1 + trailing.count)
        if let range { ranges.append(range) }
        for address in known { ranges.append((address, frameSize)) }
        ranges.append(contentsOf: trailing)
        if ranges.isEmpty { return (nil, [:], []) }
        let results = memory.readMany(ranges)
        var chunk: RemoteBytes?
        if let range, case .success(let bytes) = results[0] { chunk = RemoteBytes(address: range.address, bytes: bytes) }
        var copies = [UInt64: RemoteBytes](minimumCapacity: known.count)
        for (address, result) in zip(known, results.dropFirst(range == nil ? 0 : 1)) {
            if case .success(let bytes) = result { copies[address] = RemoteBytes(address: address, bytes: bytes) }
        }
        return (chunk, copies, results.suffix(trailing.count))
    }
}
