import PyTap

/// A small fake CPython interpreter in a `FakeMemory`: the runtime (or `interp_head`),
/// interpreters, thread states, frames and code objects, laid out with the version's
/// layout table, for `PythonReader` to walk.
final class FakeInterpreter {
    let objects: FakeObjects
    let memory: FakeMemory
    let layout: PythonLayout
    var traits: VersionTraits { layout.traits }

    /// `_PyRuntime` (3.7+).
    private(set) var runtime: UInt64?
    /// The variables `interp_head` and `_PyThreadState_Current` (2.7, 3.6).
    private(set) var interpHeadVariable: UInt64?
    private(set) var currentThreadVariable: UInt64?
    let codeType: UInt64
    let frameType: UInt64
    private(set) var interpreters: [UInt64] = []
    private var threadLists: [UInt64: [UInt64]] = [:]

    /// Where C-stack frames live (3.12+ shim frames): neither heap nor data stack.
    static let cStackStart: UInt64 = 0x7ffc_0000_0000
    private var cStackNext = FakeInterpreter.cStackStart
    /// An address nothing is mapped at.
    static let unmapped: UInt64 = 0xdead_0000_0000

    /// Bytes reserved per interpreter frame (the largest layout needs 82).
    static let frameSlot = 128

    init(version: String) throws {
        memory = FakeMemory(heapSize: 2 << 20)
        objects = try FakeObjects(version: version, memory: memory)
        layout = objects.layout
        codeType = objects.type("code")
        frameType = objects.type("frame")
        memory.map(at: FakeInterpreter.cStackStart, size: 1 << 16)
        switch layout.traits.interpreterRoot {
        case .runtime:
            runtime = memory.allocate(4096)
        case .interpHeadSymbol:
            interpHeadVariable = memory.allocate(8)
            currentThreadVariable = memory.allocate(8)
        }
        addInterpreter()
    }

    func offset(_ field: LayoutField) -> UInt64 { objects.offset(field) }
    func has(_ field: LayoutField) -> Bool { objects.has(field) }

    var mainInterpreter: UInt64 { interpreters[0] }

    var addresses: RuntimeAddresses {
        var frameObjects = false
        if case .frameObjects = traits.frameModel { frameObjects = true }
        return RuntimeAddresses(runtime: runtime, interpHead: interpHeadVariable, currentThreadState: currentThreadVariable,
                                codeType: codeType, frameType: frameObjects ? frameType : nil)
    }

    func reader() throws -> PythonReader {
        try PythonReader(memory: memory, layout: layout, addresses: addresses)
    }

    // MARK: Interpreters and threads

    /// Appends an interpreter to the runtime's list.
    @discardableResult
    func addInterpreter() -> UInt64 {
        // 3.13+ interpreters are over 7 KB (threads.head is at 7344).
        let interp = memory.allocate(8192)
        if let last = interpreters.last {
            memory.pointer(interp, at: last + offset(.interpNext))
        } else if let runtime {
            memory.pointer(interp, at: runtime + offset(.runtimeInterpretersHead))
        } else if let interpHeadVariable {
            memory.pointer(interp, at: interpHeadVariable)
        }
        // 3.12+: the interpreter points to its GIL.
        if has(.interpGIL) { memory.pointer(memory.allocate(64), at: interp + offset(.interpGIL)) }
        interpreters.append(interp)
        threadLists[interp] = []
        return interp
    }

    /// Appends a thread state to an interpreter's list (the main interpreter by default).
    @discardableResult
    func addThread(ident: UInt64, nativeID: Int64 = 0, to interpreter: UInt64? = nil) -> UInt64 {
        let interp = interpreter ?? mainInterpreter
        let tstate = memory.allocate(512)
        memory.pointer(interp, at: tstate + offset(.tstateInterp))
        memory.u64(ident, at: tstate + offset(.tstateThreadID))
        if has(.tstateNativeThreadID) { memory.i64(nativeID, at: tstate + offset(.tstateNativeThreadID)) }
        if has(.tstateCFrame) { memory.pointer(memory.allocate(32), at: tstate + offset(.tstateCFrame)) }
        if let last = threadLists[interp]?.last {
            memory.pointer(tstate, at: last + offset(.tstateNext))
            if has(.tstatePrev) { memory.pointer(last, at: tstate + offset(.tstatePrev)) }
        } else {
            memory.pointer(tstate, at: interp + offset(.interpThreadsHead))
        }
        threadLists[interp, default: []].append(tstate)
        return tstate
    }

    /// Unlinks a thread state from its interpreter's list as CPython does (the neighbours'
    /// `next` and `prev`, or the list head); its memory stays as it was.
    func unlinkThread(_ tstate: UInt64) {
        guard let interp = threadLists.first(where: { $0.value.contains(tstate) })?.key,
              var list = threadLists[interp], let index = list.firstIndex(of: tstate) else { return }
        let before = index > 0 ? list[index - 1] : nil
        let after = index + 1 < list.count ? list[index + 1] : nil
        memory.pointer(after ?? 0, at: before.map { $0 + offset(.tstateNext) } ?? interp + offset(.interpThreadsHead))
        if let after, has(.tstatePrev) { memory.pointer(before ?? 0, at: after + offset(.tstatePrev)) }
        list.remove(at: index)
        threadLists[interp] = list
    }

    /// The address of the pointer that holds a thread's innermost frame
    /// (`tstate->frame`, `tstate->cframe->current_frame` or `tstate->current_frame`).
    func topFrameField(of tstate: UInt64) -> UInt64 {
        if has(.tstateFrame) { return tstate + offset(.tstateFrame) }
        let cframe = readPointer(tstate + offset(.tstateCFrame))
        return cframe + offset(.cframeCurrentFrame)
    }

    func setTopFrame(_ frame: UInt64, of tstate: UInt64) {
        memory.pointer(frame, at: topFrameField(of: tstate))
    }

    /// Makes `holder` the thread that holds the GIL (nil: the GIL is released).
    func setGILHolder(_ holder: UInt64?, interpreter: UInt64? = nil) {
        switch traits.gil {
        case .currentThreadSymbol:
            memory.pointer(holder ?? 0, at: currentThreadVariable!)
        case .runtimeGIL:
            memory.i32(holder == nil ? 0 : 1, at: runtime! + offset(.runtimeGILLocked))
            memory.pointer(holder ?? 0, at: runtime! + offset(.runtimeGILLastHolder))
        case .interpreterGIL:
            let gil = readPointer((interpreter ?? mainInterpreter) + offset(.interpGIL))
            memory.i32(holder == nil ? 0 : 1, at: gil + offset(.gilLocked))
            memory.pointer(holder ?? 0, at: gil + offset(.gilLastHolder))
        }
    }

    // MARK: Code objects

    /// A code object whose instruction `i` (bytes 2i, 2i+1) is on `lines[i]`.
    func code(_ name: String, qualname: String? = nil, file: String, firstLine: Int, lines: [Int?],
              firstTraceable: Int32 = 0) -> UInt64 {
        objects.code(name: name, qualname: qualname, filename: file, firstLine: firstLine,
                     lineTable: FakeLineTable.encode(traits.lineTable, firstLine: firstLine, lines: lines),
                     codeType: codeType, firstTraceable: firstTraceable)
    }

    // MARK: Frames

    var previousOffset: UInt64 {
        if case .frameObjects = traits.frameModel { return offset(.frameBack) }
        return offset(.iframePrevious)
    }

    /// A frame at `instruction` (a byte offset; -1: not started) of `code`, whose caller is
    /// `previous`. ≤3.10: a frame object on the heap. 3.11+: an interpreter frame at
    /// `address` (default: on the heap, like a generator's), owned by `owner`, whose
    /// `f_executable` holds `executable` (default: `code`).
    @discardableResult
    func frame(code: UInt64, instruction: Int, previous: UInt64, owner: UInt8 = 0, at address: UInt64? = nil,
               executable: UInt64? = nil, isEntry: Bool = false) -> UInt64 {
        switch traits.frameModel {
        case .frameObjects(let lastiUnit):
            let frame = objects.object(type: frameType, size: 256)
            memory.pointer(previous, at: frame + offset(.frameBack))
            memory.pointer(code, at: frame + offset(.frameCode))
            memory.i32(Int32(instruction < 0 ? -1 : instruction / lastiUnit), at: frame + offset(.frameLasti))
            return frame
        case .interpreterFrames:
            let frame = address ?? memory.allocate(FakeInterpreter.frameSlot)
            memory.pointer(executable ?? code, at: frame + offset(.iframeCode))
            memory.pointer(previous, at: frame + offset(.iframePrevious))
            let instructions = code &+ offset(.codeCodeAdaptive)
            memory.pointer(instructions &+ UInt64(bitPattern: Int64(instruction)), at: frame + offset(.iframeInstruction))
            if has(.iframeOwner) { memory.u8(owner, at: frame + offset(.iframeOwner)) }
            if has(.iframeIsEntry) { memory.u8(isEntry ? 1 : 0, at: frame + offset(.iframeIsEntry)) }
            return frame
        }
    }

    /// Frames for `calls` (code, instruction), innermost first, each calling the next.
    func chain(_ calls: [(code: UInt64, instruction: Int)]) -> [UInt64] {
        var frames = [UInt64]()
        var previous: UInt64 = 0
        for call in calls.reversed() {
            previous = frame(code: call.code, instruction: call.instruction, previous: previous)
            frames.insert(previous, at: 0)
        }
        return frames
    }

    func setPrevious(of frame: UInt64, to previous: UInt64) {
        memory.pointer(previous, at: frame + previousOffset)
    }

    /// A C-stack slot for a shim frame (3.12+).
    func cStackFrameSlot() -> UInt64 {
        let slot = cStackNext
        cStackNext += UInt64(FakeInterpreter.frameSlot)
        return slot
    }

    /// Gives a thread a data-stack chunk (3.11+) with `slots` frame slots of which the first
    /// `used` are below `datastack_top`; returns the slots' addresses.
    func dataStack(of tstate: UInt64, slots: Int, used: Int) -> [UInt64] {
        let header = Int(offset(.stackChunkData))
        let chunk = memory.allocate(header + slots * FakeInterpreter.frameSlot)
        memory.u64(UInt64(header + slots * FakeInterpreter.frameSlot), at: chunk + offset(.stackChunkSize))
        memory.pointer(chunk, at: tstate + offset(.tstateDatastackChunk))
        memory.pointer(chunk + UInt64(header + used * FakeInterpreter.frameSlot), at: tstate + offset(.tstateDatastackTop))
        return (0..<slots).map { chunk + UInt64(header + $0 * FakeInterpreter.frameSlot) }
    }

    // MARK: Helpers

    func readPointer(_ address: UInt64) -> UInt64 {
        let bytes = memory.peek(address, count: 8)!
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }
}

/// A decoded frame as a test expects it.
struct ExpectedFrame: Equatable, CustomStringConvertible {
    var name: String
    var qualname: String
    var file: String
    var line: Int?

    init(_ name: String, qualname: String? = nil, file: String, line: Int?) {
        self.name = name
        self.qualname = qualname ?? name
        self.file = file
        self.line = line
    }

    init(_ location: PythonLocation) {
        self.init(location.name, qualname: location.qualname, file: location.filename, line: location.line)
    }

    var description: String { "\(qualname) (\(file):\(line.map(String.init) ?? "?"))" }
}

extension PythonReader {
    /// The decoded frames of a raw stack.
    func expectedFrames(_ stack: RawStack) throws -> [ExpectedFrame] {
        try stack.frames.map { ExpectedFrame(try location(of: $0)) }
    }
}
