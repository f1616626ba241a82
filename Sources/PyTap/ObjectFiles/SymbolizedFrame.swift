/// A function at a native pc: its name and, with DWARF, the source line the pc is at.
public struct SourceFunction: Sendable, Hashable {
    public var name: String
    public var file: String?
    public var line: Int?

    public init(name: String, file: String? = nil, line: Int? = nil) {
        self.name = name
        self.file = file
        self.line = line
    }
}

/// One native frame as the symbolizer describes it: the pc, the object file holding it and
/// the functions it is in — inlined calls innermost first, then (last) the function the
/// machine code belongs to. `functions` is empty when no symbol covers the pc.
public struct SymbolizedFrame: Sendable, Hashable {
    public var pc: UInt64
    /// The object file's path as the target names it; nil when no mapping holds the pc.
    public var module: String?
    public var functions: [SourceFunction]

    public init(pc: UInt64, module: String?, functions: [SourceFunction]) {
        self.pc = pc
        self.module = module
        self.functions = functions
    }

    /// The function the machine code belongs to (not an inlined one).
    public var physicalFunction: String? { functions.last?.name }
}
