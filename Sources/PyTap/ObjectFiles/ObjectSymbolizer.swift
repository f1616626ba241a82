/// Names pcs of loaded objects in source terms: the function from the symbols and, with
/// DWARF, the source line and the inlined calls at that pc. `dump --native` and
/// `sample --native` both name their frames through it.
public struct ObjectSymbolizer: Sendable {
    public var symbols: SymbolIndexCache
    public var sources: SourceLineIndexCache
    /// For a function no symbol names: its unwind entry's start stands for it.
    public var unwindTables: UnwindTableCache

    public init(caches: TargetModules.Caches) {
        self.symbols = caches.symbols
        self.sources = caches.sources
        self.unwindTables = caches.unwindTables
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
            if let symbol {
                functions = [SourceFunction(name: SymbolDemangler.demangle(symbol))]
            } else if let start = unnamedFunctionStart(address, in: object) {
                functions = [SourceFunction(name: ObjectSymbolizer.unnamedFunctionName(start: start, path: object.path))]
            }
        } else if let symbol, functions[functions.count - 1].name == "??" || symbol.hasPrefix("_Z") || symbol.hasPrefix("_R") {
            // DWARF names a C function as its source does (no `.lto_priv.0`, `.cold`
            // suffixes); the symbol is better when DWARF has no name, or for C++ and Rust,
            // whose DW_AT_name lacks the namespace the mangled name keeps (demangled).
            functions[functions.count - 1].name = SymbolDemangler.demangle(symbol)
        }
        return SymbolizedFrame(pc: pc, module: object.path, functions: functions)
    }

    /// Where the function holding link-time `address` starts, from its `.eh_frame` entry:
    /// a stripped library's static functions (zlib's `deflate_slow`, `longest_match`) have
    /// no symbol, but each has an unwind entry, so every pc of one function gets one name.
    private func unnamedFunctionStart(_ address: UInt64, in object: LoadedObject) -> UInt64? {
        guard let table = try? unwindTables.table(for: object),
              let entry = try? table.frameDescriptionEntry(for: address) else { return nil }
        return entry.fde.initialLocation
    }

    /// `libz.so.1.2.13+0x6a40`: the object's file name and the function's link-time start,
    /// as `addr2line -e`, `objdump --start-address` and a debug file found later take it.
    public static func unnamedFunctionName(start: UInt64, path: String) -> String {
        fileName(of: path) + "+0x" + String(start, radix: 16)
    }

    /// An object's file name, as reports show it (`libz.so.1.2.13`).
    public static func fileName(of path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
