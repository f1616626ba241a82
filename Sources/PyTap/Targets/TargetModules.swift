/// The object files mapped into a target, for native stacks: which file holds an address
/// (opened through the target, with its load bias and debug file), its unwind table, and
/// what a pc is in source terms. Files are opened on first use; tables, symbols and line
/// information are cached by build-id across targets (`shared`).
public final class TargetModules {
    /// Caches shared by every target of one pytap run.
    public struct Caches: Sendable {
        public var unwindTables = UnwindTableCache()
        public var symbols = SymbolIndexCache()
        public var sources = SourceLineIndexCache()

        public init() {}
    }

    public static let shared = Caches()

    public let target: Target
    public let caches: Caches
    /// Mappings of object files (and the vDSO) sorted by start.
    private let mappings: [MemoryMapping]
    private var objects: [String: LoadedObject?] = [:]
    /// Frames named so far, by lookup address (many threads and samples share their frames).
    private var named: [UInt64: SymbolizedFrame] = [:]

    public init(target: Target, caches: Caches = TargetModules.shared) throws {
        self.target = target
        self.caches = caches
        mappings = try target.mappings().filter(\.holdsObject).sorted { $0.start < $1.start }
    }

    /// The mapping holding an address.
    private func mapping(containing address: UInt64) -> MemoryMapping? {
        guard let index = mappings.lastIndex(withKeyAtMost: address, key: \.start), mappings[index].contains(address) else { return nil }
        return mappings[index]
    }

    /// The object file mapped at an address, nil when none is (or it cannot be opened).
    public func object(containing address: UInt64) -> LoadedObject? {
        guard let path = mapping(containing: address)?.path else { return nil }
        if let known = objects[path] { return known }
        let all = mappings.filter { $0.path == path }
        let object = try? LoadedObject(path: path, elf: target.openObject(path: path, mappings: all), mappings: all,
                                       debugLocator: target.debugLocator)
        objects[path] = object
        return object
    }

    /// Opens every executable object and builds its unwind table now, so that unwinding a
    /// stopped thread reads no file and the thread is held for as short a time as can be.
    public func prepareUnwinding() {
        for mapping in mappings where mapping.executable { _ = unwindModule(mapping.start) }
    }

    /// Builds the symbol and line indexes of every executable object now (a sampler does,
    /// before its first sample).
    public func prepareSymbolization() {
        let symbolizer = ObjectSymbolizer(caches: caches)
        for mapping in mappings where mapping.executable {
            if let object = object(containing: mapping.start) { symbolizer.prepare(object) }
        }
    }

    /// What the unwinder needs for an address: the file's unwind table and load bias.
    public func unwindModule(_ address: UInt64) -> UnwindModule? {
        guard let object = object(containing: address),
              let table = try? caches.unwindTables.table(for: object) else { return nil }
        return UnwindModule(table: table, loadBias: object.loadBias)
    }

    /// A native frame in source terms: its object file, the function from the symbols, and
    /// with DWARF the source line and the inlined calls at that pc.
    public func symbolize(_ frame: UnwoundFrame) -> SymbolizedFrame {
        symbolize(pc: frame.pc, lookupAddress: frame.lookupAddress)
    }

    /// `lookupAddress` is the pc, or the pc − 1 of a return address (the call instruction).
    public func symbolize(pc: UInt64, lookupAddress: UInt64) -> SymbolizedFrame {
        if var known = named[lookupAddress] {
            known.pc = pc
            return known
        }
        let frame: SymbolizedFrame
        if let object = object(containing: lookupAddress) {
            frame = ObjectSymbolizer(caches: caches).symbolize(pc: pc, lookupAddress: lookupAddress, in: object)
        } else {
            frame = SymbolizedFrame(pc: pc, module: mapping(containing: lookupAddress)?.path, functions: [])
        }
        named[lookupAddress] = frame
        return frame
    }
}
