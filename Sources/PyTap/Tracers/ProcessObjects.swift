import Synchronization

/// The object files a live process maps, found by address, with their unwind tables,
/// symbols and line tables built on first use: what unwinding and naming a sampled native
/// stack need. The
/// memory map is read again when an address falls outside every known mapping (a library
/// loaded since), at most once a second.
final class ProcessObjects {
    private let target: Target
    private let tables: UnwindTableCache
    private let symbolizer: ObjectSymbolizer
    /// Mappings of object files (and the vDSO), by start address.
    private var mappings: [MemoryMapping] = []
    private var objects: [String: LoadedObject] = [:]
    private var unopenable: Set<String> = []
    private var unwindModules: [String: UnwindModule] = [:]
    private var lastRefresh: UInt64 = 0

    init(target: Target, caches: TargetModules.Caches = TargetModules.Caches()) {
        self.target = target
        self.tables = caches.unwindTables
        self.symbolizer = ObjectSymbolizer(caches: caches)
        refresh()
    }

    /// Builds the unwind tables, symbol indexes and line indexes of every executable
    /// mapping now, so the first samples do not pay for them.
    func prepare() {
        for mapping in mappings where mapping.executable {
            _ = unwindModule(at: mapping.start)
            if let object = object(at: mapping.start) { symbolizer.prepare(object) }
        }
    }

    private func refresh() {
        lastRefresh = MonotonicClock.now()
        guard let all = try? target.mappings() else { return }
        mappings = all.filter(\.holdsObject).sorted { $0.start < $1.start }
    }

    private func mapping(at address: UInt64) -> MemoryMapping? {
        func find() -> MemoryMapping? {
            var low = 0, high = mappings.count
            while low < high {
                let middle = (low + high) / 2
                if mappings[middle].start <= address { low = middle + 1 } else { high = middle }
            }
            return low > 0 && mappings[low - 1].contains(address) ? mappings[low - 1] : nil
        }
        if let found = find() { return found }
        guard MonotonicClock.now() - lastRefresh >= 1_000_000_000 else { return nil }
        refresh()
        return find()
    }

    /// The object file mapped at `address`.
    func object(at address: UInt64) -> LoadedObject? {
        guard let path = mapping(at: address)?.path else { return nil }
        if let object = objects[path] { return object }
        if unopenable.contains(path) { return nil }
        let pieces = mappings.filter { $0.path == path }
        guard let elf = try? target.openObject(path: path, mappings: pieces),
              let object = try? LoadedObject(path: path, elf: elf, mappings: pieces, debugLocator: target.debugLocator) else {
            unopenable.insert(path)
            return nil
        }
        objects[path] = object
        return object
    }

    /// The unwind table of the object at `address`.
    func unwindModule(at address: UInt64) -> UnwindModule? {
        guard let object = object(at: address) else { return nil }
        if let module = unwindModules[object.path] { return module }
        guard let table = try? tables.table(for: object) else { return nil }
        let module = UnwindModule(table: table, loadBias: object.loadBias)
        unwindModules[object.path] = module
        return module
    }

    /// A native frame in source terms (see `ObjectSymbolizer`); `lookupAddress` is the pc,
    /// or the pc − 1 of a return address.
    func symbolize(pc: UInt64, lookupAddress: UInt64) -> SymbolizedFrame {
        guard let object = object(at: lookupAddress) else {
            return SymbolizedFrame(pc: pc, module: mapping(at: lookupAddress)?.path, functions: [])
        }
        return symbolizer.symbolize(pc: pc, lookupAddress: lookupAddress, in: object)
    }
}
