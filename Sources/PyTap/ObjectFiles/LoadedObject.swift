import Glibc

/// An object file mapped into a process: its ELF file (opened through the target's root),
/// the mappings that hold it and the load bias that turns link-time addresses into the
/// process's addresses (0 for non-PIE executables).
public final class LoadedObject: @unchecked Sendable {
    /// Path as the target sees it.
    public let path: String
    public let elf: ELFFile
    public let mappings: [MemoryMapping]
    public let loadBias: UInt64
    private var debugFileLoaded = false
    private var cachedDebugFile: ELFFile?
    public let debugLocator: DebugFileLocator

    public init(path: String, elf: ELFFile, mappings: [MemoryMapping], debugLocator: DebugFileLocator) throws {
        self.path = path
        self.elf = elf
        self.mappings = mappings
        self.debugLocator = debugLocator
        guard let bias = LoadedObject.loadBias(elf: elf, mappings: mappings) else {
            throw ObjectFileError.unsupported(path: path, what: "no PT_LOAD segment matches its mappings")
        }
        self.loadBias = bias
    }

    /// The separate debug file, found once on first use.
    public var debugFile: ELFFile? {
        if !debugFileLoaded {
            debugFileLoaded = true
            cachedDebugFile = debugLocator.debugFile(for: elf, targetPath: path)
        }
        return cachedDebugFile
    }

    /// A symbol's address in the process, from the file's symbols or its debug file's.
    public func address(ofSymbol name: String) -> UInt64? {
        if let symbol = elf.symbol(named: name) { return symbol.value &+ loadBias }
        if let symbol = debugFile?.symbol(named: name) { return symbol.value &+ loadBias }
        return nil
    }

    /// A symbol from the file or its debug file.
    public func symbol(named name: String) -> ELFSymbol? {
        elf.symbol(named: name) ?? debugFile?.symbol(named: name)
    }

    /// Whether a process address lies in one of this object's mappings.
    public func contains(_ address: UInt64) -> Bool {
        mappings.contains { $0.contains(address) }
    }

    /// Load bias: mapping start minus the page-aligned link address of the segment whose
    /// page-aligned file offset it maps.
    static func loadBias(elf: ELFFile, mappings: [MemoryMapping]) -> UInt64? {
        let pageMask = ~(UInt64(max(4096, sysconf(Int32(_SC_PAGESIZE)))) - 1)
        for segment in elf.loadSegments {
            let alignedOffset = segment.offset & pageMask
            if let mapping = mappings.first(where: { $0.fileOffset == alignedOffset }) {
                return mapping.start &- (segment.virtualAddress & pageMask)
            }
        }
        return nil
    }
}
