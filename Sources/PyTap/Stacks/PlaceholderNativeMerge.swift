/// PLACEHOLDER merge of a sampled native stack with the same instant's Python frames, used
/// by `NativeSampler` until s2-native's merger (`NativeStackMerger`: each eval-loop frame
/// replaced by exactly the Python frames its call runs, `--native` folding interpreter
/// plumbing) is merged; the lead swaps it in behind `NativeSampler.merge`. What this one
/// does: the native frames leafward of the innermost eval-loop frame, then all Python
/// frames, then the native frames rootward of the outermost eval-loop frame; the native
/// frames between eval-loop frames are dropped. Kernel frames go on top.
public enum PlaceholderNativeMerge {
    static let evalLoopFunctions: Set<String> = ["_PyEval_EvalFrameDefault", "PyEval_EvalFrameEx", "_PyEval_EvalFrame"]

    static func isEvalLoop(_ frame: Frame) -> Bool {
        guard frame.kind == .native else { return false }
        let name = frame.name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? frame.name
        return evalLoopFunctions.contains(name)
    }

    /// All arguments and the result innermost first.
    public static func merge(kernel: [Frame], native: [Frame], python: [Frame]) -> [Frame] {
        guard let innermost = native.firstIndex(where: isEvalLoop),
              let outermost = native.lastIndex(where: isEvalLoop) else {
            // No eval loop reached (the unwind stopped early): Python frames rootward of what was unwound.
            return kernel + native + python
        }
        return kernel + native[..<innermost] + python + native[(outermost + 1)...]
    }
}
