import PyTap
import Testing

/// A stripped library's static functions have no symbol: each is named by its unwind
/// entry's start (`libz.so.1+0x5d80`), the same name for every pc in it, so samples of one
/// function add up instead of scattering over their addresses.
@Suite struct UnnamedFunctionTests {
    @Test func aFunctionWithoutSymbolIsNamedByItsUnwindEntry() throws {
        let path = "/lib/x86_64-linux-gnu/libz.so.1"
        let elf = try ELFFile(path: path)
        let loadBase: UInt64 = 0x7f00_0000_0000
        let mappings = elf.loadSegments.map { segment in
            MemoryMapping(start: loadBase + (segment.virtualAddress & ~0xfff), end: loadBase + segment.virtualAddress + segment.memorySize,
                          executable: segment.flags & 1 != 0, fileOffset: segment.offset & ~0xfff, path: path)
        }
        let object = try LoadedObject(path: path, elf: elf, mappings: mappings, debugLocator: DebugFileLocator(roots: []))
        let caches = TargetModules.Caches()
        let symbolizer = ObjectSymbolizer(caches: caches)
        let table = try UnwindTable(elf: elf)
        let symbols = SymbolIndex(elf: elf, debugFile: nil)
        let entries = try #require(table.header?.table)
        // Some FDEs of stripped libz start where no symbol covers: its static functions.
        var checked = 0
        for (location, _) in entries {
            guard symbols.lookup(location) == nil, let entry = try table.frameDescriptionEntry(for: location),
                  entry.fde.addressRange > 2 else { continue }
            let first = symbolizer.symbolize(pc: location + object.loadBias, lookupAddress: location + object.loadBias, in: object)
            let inside = location + entry.fde.addressRange / 2 + object.loadBias
            let middle = symbolizer.symbolize(pc: inside, lookupAddress: inside, in: object)
            let name = "libz.so.1+0x" + String(location, radix: 16)
            #expect(first.functions.map(\.name) == [name])
            #expect(middle.functions.map(\.name) == [name])
            checked += 1
        }
        #expect(checked >= 5, "stripped libz has static functions without symbols")
        // A pc with a symbol keeps its name.
        let deflate = try #require(elf.symbol(named: "deflate"))
        let named = symbolizer.symbolize(pc: deflate.value + object.loadBias + 1, lookupAddress: deflate.value + object.loadBias + 1, in: object)
        #expect(named.functions.map(\.name) == ["deflate"])
    }
}
