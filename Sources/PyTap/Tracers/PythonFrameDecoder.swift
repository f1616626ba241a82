/// Decodes the Python frames of a walk for the native samplers, each (code object,
/// instruction) once per recording, with the eval calls the merge needs.
struct PythonFrameDecoder {
    /// `--function`: frames at their function's first line.
    let byFunction: Bool
    private var cache: [RawFrame: Frame] = [:]

    init(byFunction: Bool) {
        self.byFunction = byFunction
    }

    /// The frames of `raw`, innermost first, with its eval calls; nil when a code object
    /// cannot be read.
    mutating func calls(of raw: RawStack, reader: PythonReader) -> PythonEvalCalls? {
        var decoded: [Frame] = []
        decoded.reserveCapacity(raw.frames.count)
        for rawFrame in raw.frames {
            if let frame = cache[rawFrame] {
                decoded.append(frame)
                continue
            }
            guard let location = try? reader.location(of: rawFrame) else { return nil }
            var frame = Frame(python: location)
            if byFunction { frame = frame.atFunctionLevel }
            cache[rawFrame] = frame
            decoded.append(frame)
        }
        return PythonEvalCalls(frames: decoded, callEnds: raw.evalCallEnds)
    }

    /// Forgets the frames decoded from code objects at `codes` (the cache found other
    /// objects at those addresses now).
    mutating func forget(codes: Set<UInt64>) {
        if codes.isEmpty { return }
        cache = cache.filter { !codes.contains($0.key.code) }
    }
}
