import Synchronization

/// Unwind tables shared across processes and samples, keyed by build-id (by path for a
/// file without one): a library mapped by many targets is parsed once.
public final class UnwindTableCache: Sendable {
    private let tables = Mutex<[String: UnwindTable]>([:])

    public init() {}

    public var count: Int { tables.withLock { $0.count } }

    /// The table of an object file, built on first use.
    public func table(for elf: ELFFile, debugFile: @autoclosure () -> ELFFile? = nil) throws -> UnwindTable {
        let key = elf.cacheKey
        if let cached = tables.withLock({ $0[key] }) { return cached }
        let table = try UnwindTable(elf: elf, debugFile: debugFile())
        return tables.withLock { entries in
            if let raced = entries[key] { return raced }
            entries[key] = table
            return table
        }
    }

    /// The table of a loaded object (its debug file consulted for `.debug_frame`).
    public func table(for object: LoadedObject) throws -> UnwindTable {
        try table(for: object.elf, debugFile: object.elf.section(named: ".eh_frame") == nil ? object.debugFile : nil)
    }
}
