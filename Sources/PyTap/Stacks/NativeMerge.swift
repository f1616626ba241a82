/// Which native frames a merged stack keeps.
public enum NativeMergePolicy: Sendable, Equatable {
    /// C frames of extensions and libraries, and the interpreter's frames outside the Python
    /// part of the stack; interpreter plumbing between two Python frames is folded away.
    case native
    /// Every native frame (the eval-loop frames are still replaced by their Python frames).
    case nativeAll
}

/// What the merge needs to know about the interpreter: which native function is the eval
/// loop, which object files are the interpreter, and which of its functions are worth
/// keeping even between Python frames.
public struct NativeMergeRules: Sendable, Equatable {
    /// Functions whose native frames each run one C-level eval call (`VersionTraits.evalLoopFunctions`).
    public var evalLoopFunctions: Set<String>
    /// Object files (paths as the target names them) that are the interpreter: the
    /// executable and libpython.
    public var interpreterModules: Set<String>
    /// Interpreter functions `--native` keeps between Python frames: where a thread waits
    /// (for the GIL, a lock, a condition) or collects garbage.
    public var keptInterpreterFunctions: Set<String>

    public static let defaultKeptInterpreterFunctions: Set<String> = [
        "take_gil", "drop_gil", "PyEval_RestoreThread", "PyEval_AcquireThread",
        "PyThread_acquire_lock", "PyThread_acquire_lock_timed", "PyThread_acquire_lock_timed_with_retries",
        "acquire_timed", "lock_PyThread_acquire_lock", "rlock_acquire",
        "PyMUTEX_LOCK", "PyCOND_WAIT", "PyCOND_TIMEDWAIT", "_PyMutex_LockTimed", "_PyMutex_LockSlow",
        "PyMutex_Lock", "_PySemaphore_Wait", "_PyParkingLot_Park",
        "gc_collect_main", "gc_collect_with_callback", "_PyGC_Collect", "gc_collect_region", "gc_collect_full",
        "gc_collect_increment", "gc_collect_young",
    ]

    public init(evalLoopFunctions: Set<String>, interpreterModules: Set<String>,
                keptInterpreterFunctions: Set<String> = NativeMergeRules.defaultKeptInterpreterFunctions) {
        self.evalLoopFunctions = evalLoopFunctions
        self.interpreterModules = interpreterModules
        self.keptInterpreterFunctions = keptInterpreterFunctions
    }

    /// The rules for a target: its version's eval loop, its executable and libpython.
    public init(target: PythonTarget) {
        self.init(evalLoopFunctions: Set(target.layout.traits.evalLoopFunctions),
                  interpreterModules: Set([target.executable, target.library].compactMap { $0 }))
    }

    /// Whether a function name is the eval loop (its `.cold` part, split off by GCC, counts as it).
    func isEvalLoop(_ name: String?) -> Bool {
        guard var name else { return false }
        if let dot = name.firstIndex(of: ".") { name = String(name[..<dot]) }
        return evalLoopFunctions.contains(name)
    }
}

/// A thread's Python frames with the C-level eval calls that run them: what the merge
/// replaces eval-loop frames with. `callEnds` is `RawStack.evalCallEnds`.
public struct PythonEvalCalls: Sendable {
    /// Innermost first.
    public var frames: [Frame]
    /// For each eval call, innermost first, the number of `frames` it and the calls inside it run.
    public var callEnds: [Int]

    public init(frames: [Frame], callEnds: [Int]) {
        self.frames = frames
        self.callEnds = callEnds
    }

    /// The frames of each call, innermost call first; frames past the last end (a walk cut
    /// short) are one more, unterminated group.
    var groups: [ArraySlice<Frame>] {
        var groups = [ArraySlice<Frame>]()
        var start = 0
        for end in callEnds {
            let end = min(max(end, start), frames.count)
            groups.append(frames[start..<end])
            start = end
        }
        if start < frames.count { groups.append(frames[start...]) }
        return groups
    }
}

/// Merges a native stack with the same thread's Python frames: each native eval-loop frame
/// is replaced by exactly the Python frames its call runs. When the number of eval-loop
/// frames and of eval calls do not agree, nothing is guessed: the Python frames come first,
/// then a marker frame saying so, then the native frames as they are.
public enum NativeStackMerger {
    /// - Parameters:
    ///   - native: native frames innermost first, as symbolized.
    ///   - nativeComplete: whether the unwind reached the thread's first frame; when not,
    ///     the innermost eval calls are still merged and the rest follow a marker.
    ///   - python: the thread's Python frames and eval calls, read at the same instant.
    /// - Returns: the merged stack, innermost first.
    public static func merge(native: [SymbolizedFrame], nativeComplete: Bool = true, python: PythonEvalCalls,
                             rules: NativeMergeRules, policy: NativeMergePolicy) -> [Frame] {
        let groups = python.groups
        let evalCount = native.reduce(0) { $0 + (rules.isEvalLoop($1.physicalFunction) ? 1 : 0) }
        let lined = evalCount == groups.count || (!nativeComplete && evalCount < groups.count)
        guard lined else {
            return python.frames
                + [.marker("(native stack does not line up: \(evalCount) eval-loop frame\(evalCount == 1 ? "" : "s") for \(groups.count) Python call\(groups.count == 1 ? "" : "s"))")]
                + native.flatMap { frames(of: $0).map(\.frame) }
        }
        var merged = [(frame: Frame, plumbing: Bool)]()
        var group = 0
        for frame in native {
            if rules.isEvalLoop(frame.physicalFunction) {
                // Functions inlined into the eval loop at this pc are the loop's own work.
                if policy == .nativeAll { merged += frames(of: frame).dropLast().map { ($0.frame, false) } }
                merged += groups[group].map { ($0, false) }
                group += 1
                continue
            }
            let isInterpreter = frame.module.map(rules.interpreterModules.contains) ?? false
            for (native, name) in frames(of: frame) {
                merged.append((native, isInterpreter && !rules.keptInterpreterFunctions.contains(name)))
            }
        }
        // An unwind that stopped early says where; the Python calls it did not reach follow.
        if !nativeComplete { merged.append((NativeStackMerger.incompleteMarker, false)) }
        for rest in groups[group...] { merged += rest.map { ($0, false) } }
        guard policy == .native,
              let innermost = merged.firstIndex(where: { $0.frame.kind == .python }),
              let outermost = merged.lastIndex(where: { $0.frame.kind == .python }) else { return merged.map(\.frame) }
        return merged.enumerated().filter { index, entry in
            !(entry.plumbing && index > innermost && index < outermost)
        }.map(\.element.frame)
    }

    /// Where a native stack that did not reach the thread's first frame ends.
    public static let incompleteMarker = Frame.marker("(native stack incomplete)")

    /// The frames one native frame stands for (inlined calls, then its function), each with
    /// its function name; an unknown function is named by its address.
    static func frames(of native: SymbolizedFrame) -> [(frame: Frame, name: String)] {
        guard !native.functions.isEmpty else {
            let name = "0x" + String(native.pc, radix: 16)
            return [(Frame(kind: .native, name: name, module: native.module), name)]
        }
        return native.functions.map { function in
            (Frame(kind: .native, name: function.name, file: function.file, line: function.line, module: native.module), function.name)
        }
    }
}
