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
    /// is raising one, from its copied state (3.7+: one more read per `exc_info` item).
    public func isInException(_ thread: ThreadState) -> Bool {
        do {
            if let offset = layout[.tstateCurrentException], isException(try thread.bytes.pointer(offset)) { return true }
            return try handledException(of: thread) != nil
        } catch {
            return false
        }
    }

    /// `isInException` on a fresh copy of the thread's state (one more read).
    public func isInExceptionNow(_ thread: ThreadState) -> Bool {
        guard let bytes = try? memory.readStruct(thread.address, count: threadStateSize) else { return false }
        return isInException(ThreadState(address: thread.address, interpreter: thread.interpreter, ident: thread.ident,
                                         nativeThreadID: thread.nativeThreadID, bytes: bytes))
    }

    /// The exception the thread handles (its type on ≤3.10), nil when none.
    public func handledException(of thread: ThreadState) throws -> UInt64? {
        switch layout.traits.handledException {
        case .threadState:
            let type = try thread.bytes.pointer(try layout.require(.tstateExcType27))
            return isException(type) ? type : nil
        case .errorStack:
            let exceptionOffset = try layout.require(.errStackItemException)
            let previousOffset = try layout.require(.errStackItemPrevious)
            let itemSize = max(exceptionOffset, previousOffset) + 8
            // Like `_PyErr_GetTopmostException`: the innermost item that holds an exception.
            var item = try thread.bytes.pointer(try layout.require(.tstateExcInfo))
            var depth = 0
            while item != 0 && depth < PythonReader.maximumExceptionStackDepth {
                let bytes = try memory.readStruct(item, count: itemSize)
                let exception = try bytes.pointer(exceptionOffset)
                if isException(exception) { return exception }
                item = try bytes.pointer(previousOffset)
                depth += 1
            }
            return nil
        }
    }

    /// An exception slot holds one unless it is NULL or None.
    private func isException(_ object: UInt64) -> Bool {
        object != 0 && object != addresses.noneObject
    }
}
