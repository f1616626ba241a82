extension Frame {
    /// A Python frame from a decoded location.
    public init(python location: PythonLocation) {
        self.init(kind: .python, name: location.name, qualname: location.qualname, file: location.filename,
                  line: location.line, functionLine: location.firstLine)
    }
}

extension CutFrames {
    /// The marker frame that stands for the cut frames at the base of a stack.
    public var marker: Frame {
        .marker("(\(moreThanCounted ? "over " : "")\(count) outer frame\(count == 1 ? "" : "s") cut)")
    }
}

/// Takes `ProcessSnapshot`s: every thread of every interpreter with its stack, GIL and
/// idle state, and its name. What `pytap dump` prints.
public final class Snapshotter {
    public let target: PythonTarget
    public let reader: PythonReader
    /// Whether snapshots read each frame's arguments and local variables (`dump --locals`).
    public var includeLocals = false
    /// With `dump --native`: each thread's native stack, merged with its Python frames.
    public var native: NativeStackReader?

    public init(target: PythonTarget) throws {
        self.target = target
        self.reader = try PythonReader(target: target)
        // One snapshot can wait: a thread whose stack changes on nearly every call (tight
        // Python calls) is walked again for up to about 20 ms before it is called partial.
        if target.process != nil { reader.retryWithBackoff(times: 16) }
    }

    public func snapshot() throws -> ProcessSnapshot {
        let interpreters = try reader.interpreters()
        guard !interpreters.isEmpty else { throw AttachError.notInitialized(pid: target.pid) }
        let table = try target.source.threadTable(previous: nil)
        var collectors = GCCollectors(reader: reader, observing: interpreters)
        let states = try interpreters.flatMap { try reader.threadStates(of: $0) }
        let views = reader.threadViews(of: states, in: table)
        var gil = GILHolders(reader: reader)
        var threads = [ThreadStack]()
        for view in views {
            let state = view.state
            var capture: NativeStackReader.Capture<RawStack>?
            var nativeFailure: Error?
            if let native, let tid = view.tid {
                // The thread state is read again while the thread is held: the copy is older.
                do {
                    capture = try native.capture(tid: tid) { try reader.rawStack(of: try reader.reread(state)) }
                } catch let error as MemoryReadError where error == .processGone {
                    throw error
                } catch {
                    nativeFailure = error
                }
            }
            let raw = try capture?.python ?? reader.rawStack(of: state)
            var frames = [Frame]()
            var defect = raw.defect
            var locals = [[LocalVariable]?]()
            for (index, rawFrame) in raw.frames.enumerated() {
                do {
                    frames.append(Frame(python: try reader.location(of: rawFrame)))
                    if includeLocals {
                        locals.append(try? reader.locals(ofFrameAt: raw.frameAddresses[index], code: rawFrame.code))
                    }
                } catch let error as MemoryReadError where error == .processGone {
                    throw error
                } catch {
                    defect = defect ?? .unreadable(address: rawFrame.code, what: "code object")
                    break
                }
            }
            if let native, let capture {
                frames = native.merge(capture, python: PythonEvalCalls(frames: frames, callEnds: raw.evalCallEnds))
            } else if let nativeFailure {
                frames.append(.marker("(native stack unavailable: \(nativeFailure))"))
            }
            if let cut = raw.cut, defect == nil {
                frames.append(cut.marker)
                if includeLocals { locals.append(nil) }
            }
            if !frames.isEmpty, collectors.isCollecting(state, frameAddresses: raw.frameAddresses, gil: &gil) {
                frames.insert(.garbageCollection, at: 0)
                if includeLocals { locals.insert(nil, at: 0) }
            }
            var stack = ThreadStack(tid: view.tid, ident: state.ident, name: view.name,
                                    holdsGIL: gil.holds(state),
                                    idle: view.idle(in: target.source), frames: frames, defect: defect)
            stack.locals = locals
            threads.append(stack)
        }
        threads.sort { ($0.tid ?? Int32.max, $0.ident) < ($1.tid ?? Int32.max, $1.ident) }
        let python = PythonInfo(version: target.version.description, executable: target.executable, library: target.library)
        return ProcessSnapshot(pid: target.pid, commandLine: target.source.commandLine(), python: python, threads: threads)
    }
}
