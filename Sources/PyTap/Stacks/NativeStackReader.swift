/// A thread's native stack, read at the same instant as its Python frames: the thread is
/// held still (a live thread stopped for a moment by ptrace; a core's saved registers), its
/// stack unwound from its registers and the Python frames read meanwhile; unwind tables are
/// built before any thread is held, symbols and lines looked up after it runs again.
public final class NativeStackReader {
    public struct Capture<Python> {
        public var python: Python
        public var native: [SymbolizedFrame]
        /// The unwind reached the thread's first frame.
        public var complete: Bool
        public var stop: UnwindStop
    }

    public let modules: TargetModules
    public let rules: NativeMergeRules
    public var policy: NativeMergePolicy
    private let registers: ThreadRegisterSource
    private let unwinder: NativeUnwinder

    public init(target: PythonTarget, policy: NativeMergePolicy) throws {
        guard let registers = target.source as? ThreadRegisterSource else {
            throw NativeStackError.unsupportedTarget
        }
        self.registers = registers
        self.modules = try TargetModules(target: target.source)
        self.rules = NativeMergeRules(target: target)
        self.policy = policy
        self.unwinder = NativeUnwinder()
        modules.prepareUnwinding()
    }

    /// Holds thread `tid`, unwinds it and runs `readPython` meanwhile.
    public func capture<Python>(tid: Int32, while readPython: () throws -> Python) throws -> Capture<Python> {
        let (python, unwound) = try registers.withThreadHeld(tid: tid) { words in
            // The stack is read a page at a time, once, while the thread is held.
            let memory = PageCachedMemory(base: modules.target.memory)
            let start = unwinder.architecture.registers(fromGeneral: words)
            let unwound = unwinder.unwind(registers: start, memory: memory) { self.modules.unwindModule($0) }
            return (try readPython(), unwound)
        }
        let complete: Bool
        switch unwound.stop {
        case .outermostFrame, .zeroReturnAddress: complete = true
        default: complete = false
        }
        return Capture(python: python, native: unwound.frames.map(modules.symbolize), complete: complete, stop: unwound.stop)
    }

    /// The merged stack of a capture whose Python part is `python`.
    public func merge(_ capture: Capture<some Any>, python: PythonEvalCalls) -> [Frame] {
        NativeStackMerger.merge(native: capture.native, nativeComplete: capture.complete, python: python,
                                rules: rules, policy: policy)
    }
}

public enum NativeStackError: Error, CustomStringConvertible, Equatable {
    case unsupportedTarget

    public var description: String {
        switch self {
        case .unsupportedTarget: return "native stacks need a live process or a core file"
        }
    }
}
