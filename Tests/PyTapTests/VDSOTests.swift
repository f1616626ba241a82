import Glibc
import PyTap
import Testing

/// The vDSO has no file: its image is read from the process's memory, so that a sample
/// taken inside `clock_gettime` (every `time.time()`, `time.monotonic()`) is named and
/// unwound like any other frame. This test process's own vDSO is the real thing.
@Suite struct VDSOTests {
    @Test func theVDSOIsOpenedFromMemoryNamedAndUnwindable() throws {
        let target = try LiveProcessTarget(pid: getpid())
        let vdso = try target.mappings().filter { $0.path == MemoryMapping.vdsoName }
        try #require(!vdso.isEmpty, "this process maps no [vdso]")
        let allHoldObjects = vdso.allSatisfy { $0.holdsObject }
        #expect(allHoldObjects)
        let start = try #require(vdso.filter(\.executable).first).start

        let elf = try target.openObject(path: MemoryMapping.vdsoName, mappings: vdso)
        let symbol = try #require(elf.symbol(named: "__vdso_clock_gettime"))
        let object = try LoadedObject(path: MemoryMapping.vdsoName, elf: elf, mappings: vdso, debugLocator: target.debugLocator)
        #expect(object.loadBias == start &- (elf.loadSegments.first?.virtualAddress ?? 0))
        let address = symbol.value &+ object.loadBias

        // Its .eh_frame covers the function: the unwinder can step out of it.
        let table = try UnwindTable(elf: elf)
        #expect(try table.frameDescriptionEntry(for: symbol.value + 1) != nil)

        // TargetModules names the frame and unwinds from it.
        let modules = try TargetModules(target: target, caches: TargetModules.Caches())
        #expect(modules.unwindModule(address + 1) != nil)
        let frame = modules.symbolize(pc: address + 1, lookupAddress: address + 1)
        #expect(frame.module == MemoryMapping.vdsoName)
        #expect(frame.functions.map(\.name).contains("__vdso_clock_gettime"))
    }

    @Test func anImageInMemoryIsHeldAsAFileIs() throws {
        let image: [UInt8] = Array(repeating: 0xab, count: 5000)
        let file = try MappedFile(name: "[image]", copying: image)
        #expect(file.path == "[image]")
        #expect(Array(file.bytes) == image)
        #expect(throws: ObjectFileError.self) { _ = try ELFFile(file: file) }
    }
}

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
