import CBPF

extension PythonReader {
    /// What a BPF program needs to walk a thread's Python frames itself (bpf/python_stack.bpf.h):
    /// the links it follows and the fields it keeps, from the layout tables. Nil when the
    /// layout lacks a field the walk needs.
    public var probedStackConfig: (config: pytap_stack_config, frameReadBytes: Int)? {
        let fields: (previous: Int?, code: Int?, instruction: Int?, owner: Int?, instructionBytes: UInt32)
        switch layout.traits.frameModel {
        case .frameObjects:
            fields = (layout[.frameBack], layout[.frameCode], layout[.frameLasti], nil, 4)
        case .interpreterFrames:
            fields = (layout[.iframePrevious], layout[.iframeCode], layout[.iframeInstruction], layout[.iframeOwner], 8)
        }
        guard let previous = fields.previous, let code = fields.code, let instruction = fields.instruction,
              layout[.tstateFrame] != nil || (layout[.tstateCFrame] != nil && layout[.cframeCurrentFrame] != nil) else { return nil }
        let readBytes = [previous, code, instruction, fields.owner ?? 0].max()! + 8
        guard readBytes <= Int(PYTAP_MEMTRACE_FRAME_BYTES) else { return nil }
        let config = pytap_stack_config(thread_state_frame: Int32(layout[.tstateFrame] ?? -1),
                                        thread_state_cframe: Int32(layout[.tstateCFrame] ?? -1),
                                        cframe_current_frame: Int32(layout[.cframeCurrentFrame] ?? -1),
                                        frame_previous: Int32(previous), frame_code: Int32(code),
                                        frame_instruction: Int32(instruction), frame_owner: Int32(fields.owner ?? -1),
                                        instruction_bytes: fields.instructionBytes)
        return (config, readBytes)
    }

    /// One frame as a BPF program's walk kept it (raw words), as the live walk would see it:
    /// nil for a frame that runs no Python code (a shim frame owned by the C stack or the
    /// interpreter, a frame still in its prologue), `.failure` when its code object cannot
    /// be read now (freed since).
    public func probedFrame(code rawCode: UInt64, instruction: UInt64, owner: UInt64) -> ProbedFrame {
        switch layout.traits.frameModel {
        case .frameObjects(let lastiUnit):
            let lasti = Int(Int32(truncatingIfNeeded: instruction))
            guard (try? codes.code(at: rawCode)) != nil else { return .unreadable(code: rawCode) }
            return .frame(RawFrame(code: rawCode, instructionOffset: lasti < 0 ? -1 : lasti * lastiUnit))
        case .interpreterFrames:
            if let firstNonPython = layout[.firstNonPythonFrameOwner], Int(owner) >= firstNonPython { return .notPython }
            let code = rawCode & ~layout.traits.codeReferenceTagBits
            guard code != 0 else { return .notPython }
            let found: CodeObject?
            do { found = try codes.codeIfCode(at: code) } catch { return .unreadable(code: code) }
            guard let codeObject = found else { return .notPython }
            let offset = Int(Int64(bitPattern: instruction &- codeObject.instructionsStart))
            let codeUnit = layout[.codeUnitSize] ?? 2
            let ownedByGenerator = layout[.frameOwnedByGenerator].map { UInt64($0) }
            if owner != ownedByGenerator && offset / codeUnit < codeObject.firstTraceable { return .notPython }
            return .frame(RawFrame(code: code, instructionOffset: offset))
        }
    }
}

/// A frame kept by a BPF program's walk, decoded.
public enum ProbedFrame: Equatable, Sendable {
    case frame(RawFrame)
    /// A frame that runs no Python code: left out, as the live walk does.
    case notPython
    /// Its code object is unreadable now.
    case unreadable(code: UInt64)
}
