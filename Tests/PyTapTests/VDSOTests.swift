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

    @Test func reportsNameTheVDSOOnceBracketed() {
        #expect(Frame(kind: .native, name: "__vdso_clock_gettime", module: MemoryMapping.vdsoName).moduleTag == " [vdso]")
        #expect(Frame(kind: .native, name: "deflate", module: "/lib/x86_64-linux-gnu/libz.so.1").moduleTag == " [libz.so.1]")
        #expect(Frame(kind: .python, name: "main").moduleTag == "")
    }

    @Test func anImageInMemoryIsHeldAsAFileIs() throws {
        let image: [UInt8] = Array(repeating: 0xab, count: 5000)
        let file = try MappedFile(name: "[image]", copying: image)
        #expect(file.path == "[image]")
        #expect(Array(file.bytes) == image)
        #expect(throws: ObjectFileError.self) { _ = try ELFFile(file: file) }
    }
}
