import Foundation
import Testing
@testable import PyTap

/// memtrace's parts that need no kernel: where a uprobe goes (symbols, LTO names), which
/// allocator functions are probed, and how survivors are grouped, filtered and written.
@Suite struct MemtraceTests {
    private func loaded(_ elf: TestELF) throws -> (LoadedObject, URL) {
        let directory = try TestELF.temporaryDirectory()
        let file = try ELFFile(path: try TestELF.write(elf.build(), to: directory, as: "libfake.so.1"))
        let start: UInt64 = 0x7f12_3400_0000
        let mappings = [MemoryMapping(start: start, end: start + 0x3000, executable: true, fileOffset: 0, path: "/usr/lib/libfake.so.1")]
        return (try LoadedObject(path: "/usr/lib/libfake.so.1", elf: file, mappings: mappings, debugLocator: DebugFileLocator(roots: [])), directory)
    }

    private func function(_ name: String, at address: UInt64, size: UInt64 = 16) -> TestELF.Symbol {
        TestELF.Symbol(name: name, value: address, size: size, type: 2, binding: 0, section: TestELF.textIndex)
    }

    @Test func uprobeTargetsAreFileOffsetsUnderTheTargetsRoot() throws {
        let (object, directory) = try loaded(TestELF())
        defer { try? FileManager.default.removeItem(at: directory) }
        // A local (.symtab) function and an exported one; text is file offset 0x1000 at 0x1000.
        #expect(UprobeTarget.locate("static_helper", in: object, pid: 42)
                == UprobeTarget(function: "static_helper", path: "/proc/42/root/usr/lib/libfake.so.1", fileOffset: 0x1040))
        #expect(UprobeTarget.locate("PyObject_Call", in: object, pid: 42)?.fileOffset == 0x1010)
        #expect(UprobeTarget.locate("no_such_function", in: object, pid: 42) == nil)
        // Imported (undefined) symbols are not in the file.
        #expect(UprobeTarget.locate("malloc", in: object, pid: 42) == nil)
    }

    @Test func ltoRenamedLocalFunctionsAreFoundButNotTheirColdParts() throws {
        var elf = TestELF()
        elf.extraStaticSymbols = [function("_PyObject_Malloc.lto_priv.0.cold", at: 0x1008),
                                  function("_PyObject_Malloc.lto_priv.0", at: 0x1020),
                                  function("twice.lto_priv.0", at: 0x1030), function("twice.lto_priv.1", at: 0x1038)]
        let (object, directory) = try loaded(elf)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(UprobeTarget.locate("_PyObject_Malloc", in: object, pid: 7)?.fileOffset == 0x1020)
        // Two local functions of one name: which is meant cannot be told.
        #expect(UprobeTarget.locate("twice", in: object, pid: 7) == nil)
    }

    @Test func allocatorFamilyNeedsItsRequiredFunctionsAndWarnsOfInlinedCopies() throws {
        var elf = TestELF()
        elf.extraStaticSymbols = [function("_PyObject_Malloc", at: 0x1020), function("_PyObject_Free", at: 0x1028)]
        var (object, directory) = try loaded(elf)
        #expect(AllocatorFamily.locate(major: 3, in: object, pid: 1) == nil, "no _PyObject_Realloc: nothing is probed")
        try? FileManager.default.removeItem(at: directory)

        elf.extraStaticSymbols += [function("_PyObject_Realloc", at: 0x1030), function("PyObject_Malloc", at: 0x1050, size: 0x23)]
        (object, directory) = try loaded(elf)
        let found = try #require(AllocatorFamily.locate(major: 3, in: object, pid: 1))
        #expect(found.map(\.0.name) == ["_PyObject_Malloc", "_PyObject_Realloc", "_PyObject_Free"])
        #expect(found.allSatisfy { $0.0.takesContext })
        #expect(AllocatorFamily.locate(major: 2, in: object, pid: 1) == nil)
        let family = AllocatorFamily.all.first { $0.major == 3 }!
        #expect(MemoryTracer.inliningWarnings(object, family: family).isEmpty, "a small wrapper only jumps to the allocator")
        try? FileManager.default.removeItem(at: directory)

        // A wrapper holding a copy of the allocator (LTO): pytap says counts are lower bounds.
        elf.extraStaticSymbols[elf.extraStaticSymbols.count - 1].size = 0x10f
        (object, directory) = try loaded(elf)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(MemoryTracer.inliningWarnings(object, family: family).first?.contains("link-time optimization") == true)
    }

    private func result() -> MemtraceResult {
        var result = MemtraceResult()
        result.start = 1_000_000_000
        result.end = 11_000_000_000
        result.allocations = 9
        result.frees = 4
        result.hits = 30
        result.functions = ["_PyObject_Malloc"]
        let leak = ProbedFrame.frame(RawFrame(code: 0x100, instructionOffset: 4))
        let caller = ProbedFrame.frame(RawFrame(code: 0x200, instructionOffset: 8))
        let churn = ProbedFrame.frame(RawFrame(code: 0x300, instructionOffset: 2))
        // Two kept stacks that read the same (another instruction of one line) are one group.
        result.stacks = [11: [leak, caller], 12: [leak, caller], 13: [churn, caller]]
        result.blocks = [
            .init(address: 0xa0, size: 1000, time: 2_000_000_000, stack: 11, tid: 5),
            .init(address: 0xa1, size: 1000, time: 3_000_000_000, stack: 12, tid: 5),
            .init(address: 0xa2, size: 64, time: 10_500_000_000, stack: 13, tid: 5),
            .init(address: 0xa3, size: 8, time: 10_900_000_000, stack: 0, tid: 6),
        ]
        return result
    }

    private func frame(_ probed: ProbedFrame) -> Frame {
        guard case .frame(let raw) = probed else { return .marker("?") }
        let names: [UInt64: (String, Int)] = [0x100: ("leak_here", 18), 0x200: ("main", 40), 0x300: ("churn", 23)]
        let (name, line) = names[raw.code]!
        return Frame(kind: .python, name: name, file: "leaky.py", line: line)
    }

    @Test func survivorsAreGroupedByStackBiggestFirstWithTimesFromTheStart() throws {
        let report = MemtraceReport(result: result(), minimumAge: nil, frames: frame)
        #expect(report.survivors.count == 3)
        let leak = report.survivors[0]
        #expect(leak.frames.map(\.name) == ["leak_here", "main"])
        #expect(leak.count == 2 && leak.bytes == 2000)
        #expect(leak.firstNanoseconds == 1_000_000_000 && leak.lastNanoseconds == 2_000_000_000)
        #expect(report.survivors[1].frames.map(\.name) == ["churn", "main"])
        #expect(report.survivors[2].frames == [.marker("(thread 6: stack unknown)")])
        let text = report.text()
        #expect(text.contains("2 blocks, 2000 bytes, allocated from 1.0 s to 2.0 s:\n    leak_here (leaky.py:18)\n    main (leaky.py:40)\n"))
        #expect(text.contains("9 allocations, 4 frees, 0 lost"))
    }

    @Test func minimumAgeKeepsOnlyBlocksThatOld() throws {
        let report = MemtraceReport(result: result(), minimumAge: 1, frames: frame)
        #expect(report.survivors.map { $0.frames[0].name } == ["leak_here"])
        #expect(MemtraceReport(result: result(), minimumAge: 60, frames: frame).survivors.isEmpty)
    }

    @Test func jsonHasTheDocumentedShape() throws {
        let report = MemtraceReport(result: result(), minimumAge: nil, frames: frame)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        #expect(object["via"] as? String == "probes")
        #expect(object["allocations"] as? Int == 9 && object["frees"] as? Int == 4 && object["lost"] as? Int == 0)
        let survivors = try #require(object["survivors"] as? [[String: Any]])
        #expect(survivors.count == 3)
        #expect(survivors[0]["count"] as? Int == 2 && survivors[0]["bytes"] as? Int == 2000)
        #expect(survivors[0]["first_ms"] as? Double == 1000 && survivors[0]["last_ms"] as? Double == 2000)
        #expect(survivors[0]["type"] is NSNull)
        let frames = try #require(survivors[0]["frames"] as? [[String: Any]])
        #expect(frames.map { $0["name"] as? String } == ["leak_here", "main"])
        #expect(frames[0]["kind"] as? String == "python" && frames[0]["line"] as? Int == 18 && frames[0]["file"] as? String == "leaky.py")
    }
}
