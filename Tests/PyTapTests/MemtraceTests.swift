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
        let helper = UprobeTarget.locate("static_helper", in: object, pid: 42)
        #expect(helper?.path == "/proc/42/root/usr/lib/libfake.so.1")
        #expect(helper?.fileOffset == 0x1040)
        // Its first bytes come from the file; the first is a push (0x50), so an entry probe stays.
        #expect(helper?.entryBytes == Array(TestELF.textBytes[0x40..<0x50]))
        #expect(helper?.entryProbeOffset == 0x1040)
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

    @Test func groupTypeIsTheMostCommonKnownTypeOfItsBlocks() throws {
        var typed = result()
        typed.blocks[0].type = "bytearray"
        typed.blocks[1].type = nil  // a raw buffer
        typed.blocks.append(.init(address: 0xa4, size: 10, time: 2_500_000_000, stack: 11, tid: 5, type: "bytearray"))
        typed.blocks.append(.init(address: 0xa5, size: 10, time: 2_500_000_000, stack: 11, tid: 5, type: "list"))
        let report = MemtraceReport(result: typed, minimumAge: nil, frames: frame)
        #expect(report.survivors[0].type == "bytearray" && report.survivors[0].count == 4)
        #expect(report.survivors[1].type == nil, "no block of the churn group was a known object")
        #expect(report.text().contains("4 blocks, 2020 bytes (mostly bytearray), allocated from"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let survivors = try #require(object["survivors"] as? [[String: Any]])
        #expect(survivors[0]["type"] as? String == "bytearray" && survivors[1]["type"] is NSNull)
        // Ties go to the alphabetically first name, so the output is stable.
        let tie = MemtraceReport.group([MemtraceReport.Block(frames: [], bytes: 1, time: 0, type: "b"),
                                        MemtraceReport.Block(frames: [], bytes: 1, time: 0, type: "a")])
        #expect(tie.first?.type == "a")
    }

    @Test func survivorsAreAProfileInBytesForEveryWriter() throws {
        let report = MemtraceReport(result: result(), minimumAge: nil, frames: frame)
        let profile = report.profile(pid: 42, command: "python3 leaky.py", pythonVersion: "3.12.1", startTime: 1_700_000_000)
        #expect(profile.metadata.unit == .bytes)
        let folded = FoldedWriter().render(profile)
        #expect(folded.contains("main (leaky.py:40);leak_here (leaky.py:18) 2000\n"))
        #expect(folded.contains("main (leaky.py:40);churn (leaky.py:23) 64\n"))

        let svg = FlameGraphWriter().render(profile)
        #expect(svg.contains("2072 bytes") && svg.contains("leak_here (leaky.py:18)\n2000 bytes, 96.53%"))
        #expect(!svg.contains("Hz"))

        let speedscope = try #require(try JSONSerialization.jsonObject(with: Data(try SpeedscopeWriter().render(profile).utf8)) as? [String: Any])
        let only = try #require((speedscope["profiles"] as? [[String: Any]])?.first)
        #expect(only["unit"] as? String == "bytes")
        #expect((only["weights"] as? [Double])?.reduce(0, +) == 2072 && only["endValue"] as? Double == 2072)

        let pprof = try decodePprof(try PprofWriter().render(profile))
        let strings = pprof.stringTable
        #expect(pprof.sampleType.map { [strings[Int($0.type)], strings[Int($0.unit)]] } == [["inuse_objects", "count"], ["inuse_space", "bytes"]])
        #expect(pprof.sample.map(\.value).sorted { $0[1] > $1[1] } == [[2, 2000], [1, 64], [1, 8]])
    }

    @Test func cpuProfilesAreUnchangedByWeights() throws {
        // A sample of weight one is what `add` always recorded: counts, not bytes.
        var profile = Profile(metadata: ProfileMetadata(command: "x", pid: 1, pythonVersion: nil, rate: 100, startTime: 0, duration: 1))
        let thread = SampledThread(pid: 1, tid: 1, ident: 1, name: nil)
        profile.add(rootFirst: [.marker("a")], thread: thread, time: 0)
        profile.add(rootFirst: [.marker("a")], thread: thread, time: 1, value: 5, events: 2)
        profile.add(rootFirst: [.marker("a")], thread: thread, time: 2)
        #expect(profile.countsByStack().values.first == 7)
        #expect(profile.weight(thread: 0, sample: 0) == .one && profile.weight(thread: 0, sample: 2) == .one)
    }
}

/// Naming the type of a surviving block: objects after their pre-headers, raw buffers nil.
@Suite struct BlockTypeReaderTests {
    /// A fake 3.12 heap with `type` at 0x5555_0001_0000 and classes made by `makeType`.
    struct Heap {
        let memory = FakeMemory()
        let layout: PythonLayout
        let typeType: UInt64

        init(version: String) throws {
            layout = try FakeObjects.layout(version)
            typeType = memory.allocate(400)
            memory.writeInteger(typeType, at: typeType + UInt64(layout[.objectType]!))
        }

        func makeType(_ name: String, flags: UInt64, basicSize: Int64, metatype: UInt64? = nil) -> UInt64 {
            let type = memory.allocate(400)
            let nameAddress = memory.allocate(name.utf8.count + 1)
            memory.write(Array(name.utf8) + [0], at: nameAddress)
            memory.writeInteger(metatype ?? typeType, at: type + UInt64(layout[.objectType]!))
            memory.writeInteger(nameAddress, at: type + UInt64(layout[.typeName]!))
            memory.writeInteger(basicSize, at: type + UInt64(layout[.typeBasicSize]!))
            memory.writeInteger(flags, at: type + UInt64(layout[.typeFlags]!))
            return type
        }

        /// A block of `size` bytes whose object (of `type`) starts `offset` bytes in.
        func block(size: Int, objectAt offset: Int, type: UInt64) -> (address: UInt64, size: UInt64) {
            let address = memory.allocate(size)
            memory.writeInteger(type, at: address + UInt64(offset + layout[.objectType]!))
            return (address, UInt64(size))
        }
    }

    @Test func objectsAreFoundAfterTheirPreHeadersAndBuffersAreNot() throws {
        let heap = try Heap(version: "3.12.1")
        let reader = try #require(BlockTypeReader(memory: heap.memory, layout: heap.layout, typeType: heap.typeType))
        let gc: UInt64 = 1 << 14, managedDict: UInt64 = 1 << 4
        let bytearray = heap.makeType("bytearray", flags: 0, basicSize: 56)
        let list = heap.makeType("list", flags: gc, basicSize: 40)
        let leaked = heap.makeType("Leaked", flags: gc | managedDict, basicSize: 16)
        let meta = heap.makeType("ABCMeta", flags: gc, basicSize: 900)
        let abstract = heap.makeType("Base", flags: 0, basicSize: 16, metatype: meta)
        let notAType = heap.memory.allocate(400)  // its ob_type is 0
        let blocks = [
            heap.block(size: 56, objectAt: 0, type: bytearray),
            heap.block(size: 56, objectAt: 16, type: list),     // after the GC header
            heap.block(size: 64, objectAt: 32, type: leaked),   // after the managed dict words too
            heap.block(size: 16, objectAt: 0, type: abstract),  // a class whose type is a metaclass
            heap.block(size: 1000, objectAt: 0, type: 0),       // a zeroed buffer
            heap.block(size: 64, objectAt: 0, type: notAType),  // a pointer to something else
            heap.block(size: 56, objectAt: 0, type: list),      // a GC type without its GC header
            heap.block(size: 40, objectAt: 0, type: bytearray), // smaller than a bytearray
            heap.block(size: 8, objectAt: -8, type: bytearray), // too small to hold ob_type
            (address: 0x10, size: 64),                          // unmapped
        ]
        #expect(reader.typeNames(of: blocks) == ["bytearray", "list", "Leaked", "Base", nil, nil, nil, nil, nil, nil])
    }

    @Test func gcHeaderSizesAreThoseOfEachVersion() throws {
        for (version, gcHead) in [("2.7.18", 32), ("3.7.17", 32), ("3.10.13", 16)] {
            let heap = try Heap(version: version)
            let reader = try #require(BlockTypeReader(memory: heap.memory, layout: heap.layout, typeType: heap.typeType))
            let dict = heap.makeType("dict", flags: 1 << 14, basicSize: 48)
            #expect(reader.typeNames(of: [heap.block(size: 96, objectAt: gcHead, type: dict)]) == ["dict"], "\(version)")
            #expect(reader.objectOffset(flags: 1 << 4 | 1 << 14) == gcHead, "no managed dict before 3.11")
        }
    }
}
