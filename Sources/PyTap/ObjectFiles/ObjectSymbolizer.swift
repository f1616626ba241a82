/// Names pcs of loaded objects in source terms: the function from the symbols and, with
/// DWARF, the source line and the inlined calls at that pc. `dump --native` and
/// `sample --native` both name their frames through it.
public struct ObjectSymbolizer: Sendable {
    public var symbols: SymbolIndexCache
    public var sources: SourceLineIndexCache

    public init(symbols: SymbolIndexCache, sources: SourceLineIndexCache) {
        self.symbols = symbols
        self.sources = sources
    }

    /// Builds what naming a pc of `object` needs (its symbol index and line index), so the
    /// first lookups do not pay for it.
    public func prepare(_ object: LoadedObject) {
        _ = symbols.index(for: object)
        _ = sources.index(for: object)
    }

    /// `lookupAddress` is the pc, or the pc − 1 of a return address (the call instruction),
    /// in the process's addresses.
    public func symbolize(pc: UInt64, lookupAddress: UInt64, in object: LoadedObject) -> SymbolizedFrame {
        let address = lookupAddress &- object.loadBias
        var functions = sources.index(for: object)?.functions(at: address) ?? []
        let symbol = symbols.index(for: object).lookup(address)?.name
        if functions.isEmpty {
            if let symbol { functions = [SourceFunction(name: SymbolDemangler.demangle(symbol))] }
        } else if let symbol, functions[functions.count - 1].name == "??" || symbol.hasPrefix("_Z") || symbol.hasPrefix("_R") {
            // DWARF names a C function as its source does (no `.lto_priv.0`, `.cold`
            // suffixes); the symbol is better when DWARF has no name, or for C++ and Rust,
            // whose DW_AT_name lacks the namespace the mangled name keeps (demangled).
            functions[functions.count - 1].name = SymbolDemangler.demangle(symbol)
        }
        return SymbolizedFrame(pc: pc, module: object.path, functions: functions)
    }
}
