/// What one interpreter's cyclic garbage collector is doing, as read at one moment.
public struct GCActivity: Sendable, Equatable {
    /// The collector runs (`collecting`).
    public var collecting: Bool
    /// The frame that was innermost in the collecting thread when the collection began
    /// (`gc.frame`, 3.15+); 0 where the version does not record it, or none was.
    public var startFrame: UInt64

    public init(collecting: Bool, startFrame: UInt64 = 0) {
        self.collecting = collecting
        self.startFrame = startFrame
    }
}

extension PythonReader {
    /// `_PyErr_StackItem`s followed at most down a thread's `exc_info` stack (one item per
    /// generator or coroutine running inside another frame's handler).
    public static let maximumExceptionStackDepth = 256

    /// The collector state of an interpreter, nil when the version or binary cannot tell
    /// (2.7/3.6 without gcmodule.c's local symbol) or it could not be read.
    public func gcActivity(interpreter: UInt64) -> GCActivity? {
        guard let range = gcStateRange(interpreter: interpreter), let bytes = try? memory.readBytes(range.address, count: range.count) else {
            return nil
        }
        return gcActivity(fromStateBytes: bytes)
    }

    /// Where the collector state of an interpreter is: one range, read by `gcActivity` or
    /// batched with other reads (see `allThreadStates(readingFirst:)`).
    public func gcStateRange(interpreter: UInt64) -> (address: UInt64, count: Int)? {
        switch layout.traits.gcState {
        case .collectingSymbol:
            return addresses.gcCollecting.map { ($0, 4) }
        case .runtime:
            guard let runtime = addresses.runtime, let offset = layout[.runtimeGCCollecting] else { return nil }
            return (runtime &+ UInt64(offset), 4)
        case .interpreter:
            guard let offset = layout[.interpGCCollecting] else { return nil }
            // `frame` follows `collecting` (3.15): both in one read.
            if let frameOffset = layout[.interpGCFrame], frameOffset > offset, frameOffset - offset <= 64 {
                return (interpreter &+ UInt64(offset), frameOffset - offset + 8)
            }
            return (interpreter &+ UInt64(offset), 4)
        }
    }

    /// The collector state from the bytes read at `gcStateRange`.
    public func gcActivity(fromStateBytes bytes: [UInt8]) -> GCActivity? {
        let state = RemoteBytes(address: 0, bytes: bytes)
        guard let collecting = try? state.i32(0) != 0 else { return nil }
        guard bytes.count > 8, case .interpreter = layout.traits.gcState, let offset = layout[.interpGCCollecting],
              let frameOffset = layout[.interpGCFrame] else { return GCActivity(collecting: collecting) }
        guard let frame = try? state.pointer(frameOffset - offset) else { return nil }
        return GCActivity(collecting: collecting, startFrame: collecting ? frame : 0)
    }

    /// Whether the thread handles an exception (`sys.exc_info()` in it would return one) or
    /// is raising one, from its copied state (3.7+: one more read per `exc_info` item that
    /// lies outside the copy, a generator's).
    public func isInException(_ thread: ThreadState) -> Bool {
        do {
            if let offset = layout[.tstateCurrentException], isException(try thread.bytes.pointer(offset)) { return true }
            return try handledException(of: thread) != nil
        } catch {
            return false
        }
    }

    /// After a walk (`--mode exception`): the thread handles or raises an exception now, and
    /// the walk's innermost frame is still on its stack, running the same code. The walk
    /// copies frames after the thread state it started from; on 3.11+ a returned call's
    /// frame slot is reused by the next call, so a thread leaving a handler and entering the
    /// next one can show the walk another function's frame at the very address it started
    /// from. The frame's code, the innermost frame and the exception slots (before and
    /// after) are read in one system call. A stress test (handler and plain function
    /// alternating every 15 µs, 3 busy loops on 2 cores) kept 11% of 3.12's samples outside
    /// the handler with only the live state re-read, 0.05–0.26% on 3.11–3.13 with these
    /// reads made one after another, none of about 5,000 per version 2.7–3.15 so.
    public func isInExceptionNow(_ thread: ThreadState, stillRunning walk: RawStack) -> Bool {
        let copy = walk.threadState ?? thread
        guard let walkedTop = walk.frameAddresses.first, let walkedCode = walk.frames.first?.code,
              let links = frameLinks, let slots = exceptionSlots(of: copy) else { return false }
        let top = liveTopFrameRanges(of: copy)
        guard !top.isEmpty else { return false }
        // The slots are read before and after the frame: pytap preempted inside the system
        // call would otherwise leave a window for the thread to go from one to the other.
        let slotCount = slots.ranges.count
        let results = memory.readMany(slots.ranges + [(walkedTop &+ UInt64(links.code), 8)] + top + slots.ranges)
        guard holdsException(slots, results: results.prefix(slotCount)),
              case .success(let codeBytes) = results[slotCount], let code = try? RemoteBytes(address: 0, bytes: codeBytes).pointer(0),
              code & links.tagMask == walkedCode,
              case .frame(var current)? = liveTopFrame(of: copy, from: results[(slotCount + 1)..<(slotCount + 1 + top.count)]),
              holdsException(slots, results: results.suffix(slotCount)) else { return false }
        // The stack may have grown above the walked frame meanwhile, not shrunk below it.
        var depth = 0
        while current != walkedTop {
            depth += 1
            guard current != 0, depth <= 8, let next = try? memory.readPointer(current &+ UInt64(links.previous)) else { return false }
            current = next
        }
        return true
    }

    /// Where a frame holds its caller and its code, and the tag bits of the code reference.
    private var frameLinks: (previous: Int, code: Int, tagMask: UInt64)? {
        switch layout.traits.frameModel {
        case .frameObjects:
            guard let previous = layout[.frameBack], let code = layout[.frameCode] else { return nil }
            return (previous, code, .max)
        case .interpreterFrames:
            guard let previous = layout[.iframePrevious], let code = layout[.iframeCode] else { return nil }
            return (previous, code, ~layout.traits.codeReferenceTagBits)
        }
    }

    /// The live slots that tell whether a thread is in an exception, to read in one batch:
    /// the exception being raised, and the one handled (≤3.6: its type in the thread state;
    /// 3.7+: `tstate->exc_info` and the item the copy says it points to).
    private struct ExceptionSlots {
        var ranges: [(address: UInt64, count: Int)] = []
        var raising: Int?
        var handledType: Int?
        /// The `exc_info` range's index, the copy's pointer and the item's layout.
        var errorStack: (index: Int, item: UInt64, exception: Int, previous: Int)?
    }

    private func exceptionSlots(of copy: ThreadState) -> ExceptionSlots? {
        var slots = ExceptionSlots()
        func add(_ offset: Int, count: Int = 8, at address: UInt64? = nil) -> Int {
            slots.ranges.append(((address ?? copy.address &+ UInt64(offset)), count))
            return slots.ranges.count - 1
        }
        if let offset = layout[.tstateCurrentException] { slots.raising = add(offset) }
        switch layout.traits.handledException {
        case .threadState:
            guard let offset = layout[.tstateExcType27] else { return nil }
            slots.handledType = add(offset)
        case .errorStack:
            guard let infoOffset = layout[.tstateExcInfo], let exception = layout[.errStackItemException],
                  let previous = layout[.errStackItemPrevious], let item = try? copy.bytes.pointer(infoOffset) else { return nil }
            let index = add(infoOffset)
            if item != 0 { _ = add(0, count: max(exception, previous) + 8, at: item) }
            slots.errorStack = (index, item, exception, previous)
        }
        return slots
    }

    private func holdsException(_ slots: ExceptionSlots, results: ArraySlice<Result<[UInt8], MemoryReadError>>) -> Bool {
        func value(_ index: Int, at offset: Int = 0) -> UInt64? {
            guard case .success(let bytes) = results[results.startIndex + index] else { return nil }
            return try? RemoteBytes(address: 0, bytes: bytes).pointer(offset)
        }
        if let raising = slots.raising, let object = value(raising), isException(object) { return true }
        if let handledType = slots.handledType { return value(handledType).map(isException) ?? false }
        guard let stack = slots.errorStack, value(stack.index) == stack.item, stack.item != 0,
              let exception = value(stack.index + 1, at: stack.exception) else { return false }
        if isException(exception) { return true }
        // A generator's item without one of its own: the rest of the stack, read on.
        guard let previous = value(stack.index + 1, at: stack.previous), previous != 0 else { return false }
        return (try? firstException(fromItem: previous, exceptionOffset: stack.exception, previousOffset: stack.previous)) != nil
    }

    /// The exception the thread handles (its type on ≤3.10), nil when none.
    public func handledException(of thread: ThreadState) throws -> UInt64? {
        switch layout.traits.handledException {
        case .threadState:
            let type = try thread.bytes.pointer(try layout.require(.tstateExcType27))
            return isException(type) ? type : nil
        case .errorStack:
            return try firstException(fromItem: try thread.bytes.pointer(try layout.require(.tstateExcInfo)),
                                      exceptionOffset: try layout.require(.errStackItemException),
                                      previousOffset: try layout.require(.errStackItemPrevious), copy: thread)
        }
    }

    /// Like `_PyErr_GetTopmostException`: the innermost item of the `exc_info` stack that
    /// holds an exception. The item of a thread running plain functions is
    /// `tstate->exc_state`: when inside `copy` it is taken from there, so the answer is of
    /// the instant the copy's innermost frame is.
    private func firstException(fromItem first: UInt64, exceptionOffset: Int, previousOffset: Int,
                                copy: ThreadState? = nil) throws -> UInt64? {
        let itemSize = max(exceptionOffset, previousOffset) + 8
        var item = first
        var depth = 0
        while item != 0 && depth < PythonReader.maximumExceptionStackDepth {
            let bytes: RemoteBytes
            if let copy, case let offset = item &- copy.address, offset < UInt64(copy.bytes.count),
               Int(offset) + itemSize <= copy.bytes.count {
                bytes = RemoteBytes(address: item, bytes: Array(try copy.bytes.slice(Int(offset), count: itemSize)))
            } else {
                bytes = try memory.readStruct(item, count: itemSize)
            }
            let exception = try bytes.pointer(exceptionOffset)
            if isException(exception) { return exception }
            item = try bytes.pointer(previousOffset)
            depth += 1
        }
        return nil
    }

    /// An exception slot holds one unless it is NULL or None.
    private func isException(_ object: UInt64) -> Bool {
        object != 0 && object != addresses.noneObject
    }
}
