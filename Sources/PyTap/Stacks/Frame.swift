/// What produced a frame of a merged stack.
public enum FrameKind: String, Sendable, Hashable, Codable {
    /// A Python function being run by the interpreter.
    case python
    /// A machine-code function of the process (the interpreter, libc, an extension module).
    case native
    /// A kernel function (from a perf sample's kernel callchain).
    case kernel
    /// A synthetic root pytap adds: a process or thread header, or a marker such as
    /// "(partial stack)". Writers print its name as it is.
    case marker
}

/// One frame of a stack, the unit every report is made of.
public struct Frame: Hashable, Sendable {
    public var kind: FrameKind
    /// Function name (`co_name` for Python, symbol for native and kernel).
    public var name: String
    /// Qualified name (`co_qualname` on 3.11+, else the name).
    public var qualname: String
    /// Source file (Python `co_filename`; native frames when DWARF lines are known).
    public var file: String?
    /// Source line, when known.
    public var line: Int?
    /// First line of the function (`co_firstlineno`), for aggregating by function.
    public var functionLine: Int?
    /// The object file of a native frame (library path), nil for Python frames.
    public var module: String?

    public init(kind: FrameKind, name: String, qualname: String? = nil, file: String? = nil, line: Int? = nil,
                functionLine: Int? = nil, module: String? = nil) {
        self.kind = kind
        self.name = name
        self.qualname = qualname ?? name
        self.file = file
        self.line = line
        self.functionLine = functionLine
        self.module = module
    }

    public static func marker(_ text: String) -> Frame {
        Frame(kind: .marker, name: text)
    }

    /// The frame with its line replaced by the function's first line: aggregating by
    /// function instead of by line. A native frame's line (and file: an inlined call's lines
    /// can come from a header) is dropped, as its function's first line is not known.
    public var atFunctionLevel: Frame {
        var copy = self
        if kind == .native && functionLine == nil {
            copy.line = nil
            copy.file = nil
        } else {
            copy.line = functionLine ?? line
        }
        return copy
    }
}

extension Frame {
    /// The one way every report names a frame (dump text, folded output, flame graphs,
    /// summaries): `qualname (file:line)` for Python, `symbol` for native, `symbol_[k]`
    /// for kernel frames.
    public var label: String {
        var text = functionName
        if kind == .python, let file {
            text += " (" + file
            if let line { text += ":\(line)" }
            text += ")"
        }
        return text
    }

    /// A native frame's object for text reports: ` [libz.so.1.2.13]` (the file's name);
    /// the vDSO, which has no file, ` [vdso]`; empty without one.
    public var moduleTag: String {
        guard let module else { return "" }
        return module.hasPrefix("[") ? " " + module : " [" + ObjectSymbolizer.fileName(of: module) + "]"
    }

    /// The function alone, for formats that keep file and line apart (speedscope, pprof):
    /// `qualname` for Python, `symbol` for native, `symbol_[k]` for kernel frames.
    public var functionName: String {
        switch kind {
        case .python: return qualname
        case .native, .marker: return name
        case .kernel: return name + "_[k]"
        }
    }
}
