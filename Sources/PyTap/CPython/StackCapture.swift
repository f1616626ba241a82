extension PythonReader {
    /// What the BPF sampling program needs to copy a thread's Python frames: the sizes the
    /// walker reads and the links it follows, from the layout tables.
    public var stackCaptureLayout: StackCaptureLayout {
        let previous: Int?
        switch layout.traits.frameModel {
        case .frameObjects: previous = layout[.frameBack]
        case .interpreterFrames: previous = layout[.iframePrevious]
        }
        return StackCaptureLayout(threadStateBytes: threadStateSize, frameBytes: frameSize,
                                  threadStateFrame: layout[.tstateFrame], threadStateCFrame: layout[.tstateCFrame],
                                  cframeCurrentFrame: layout[.cframeCurrentFrame], framePrevious: previous ?? 0)
    }
}
