extension PythonReader {
    /// What the BPF sampling program needs to copy a thread's Python frames: the sizes the
    /// walker reads and the links it follows, from the layout tables.
    public var stackCaptureLayout: StackCaptureLayout {
        let previous: Int?
        let code: Int?
        switch layout.traits.frameModel {
        case .frameObjects: (previous, code) = (layout[.frameBack], layout[.frameCode])
        case .interpreterFrames: (previous, code) = (layout[.iframePrevious], layout[.iframeCode])
        }
        var capture = StackCaptureLayout(threadStateBytes: threadStateSize, frameBytes: frameSize,
                                         threadStateFrame: layout[.tstateFrame], threadStateCFrame: layout[.tstateCFrame],
                                         cframeCurrentFrame: layout[.cframeCurrentFrame], framePrevious: previous ?? 0)
        // What the code cache's identity check reads of each frame's code object, copied at
        // the sample's instant (see `CodeIdentity`).
        let identity = codes.identity
        capture.codeIdentity = StackCaptureLayout.CodeIdentityCopy(
            frameCode: code, headBytes: max(identity.codeSpan, codes.headerSize),
            name: identity.headerCanSuffice ? nil : identity.nameOffset,
            lineTable: identity.headerCanSuffice ? nil : identity.tableOffset,
            objectType: identity.typeOffset, pointerMask: ~layout.traits.codeReferenceTagBits)
        return capture
    }
}
