import Synchronization

/// Source lines and inlined calls of one object file, from DWARF (`.debug_line`,
/// `.debug_info`) of the file or its separate debug file.
public final class SourceLineIndex: @unchecked Sendable {
    init?(elf: ELFFile) {
        return nil
    }

    /// The functions at a link-time address, inlined calls innermost first, then the
    /// function the code belongs to; each with the source line the address is at in it.
    public func functions(at address: UInt64) -> [SourceFunction] { [] }
}

/// Source line indexes shared across processes, keyed by build-id; nil (cached too) for a
/// file without DWARF.
public final class SourceLineIndexCache: Sendable {
    private let indexes = Mutex<[String: SourceLineIndex?]>([:])

    public init() {}

    public func index(for object: LoadedObject) -> SourceLineIndex? {
        let key = object.elf.cacheKey
        if let cached = indexes.withLock({ $0[key] }) { return cached }
        let dwarfFile = object.elf.section(named: ".debug_info") != nil ? object.elf : object.debugFile
        let index = dwarfFile.flatMap { SourceLineIndex(elf: $0) }
        return indexes.withLock { entries in
            if let raced = entries[key] { return raced }
            entries[key] = .some(index)
            return index
        }
    }
}
