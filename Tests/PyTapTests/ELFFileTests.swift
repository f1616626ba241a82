import Foundation
import Testing
import PyTap

/// `ELFFile` on small hand-written ELF64 files: sections, symbols, notes, compressed
/// sections, addresses, and files that are cut short or garbage.
@Suite struct ELFFileTests {
    static let debugStrings = Array(String(repeating: "hello debug strings\0", count: 50).utf8)

    /// Writes `elf` to a temporary directory and opens it.
    private func open(_ elf: TestELF) throws -> (ELFFile, URL) {
        let directory = try TestELF.temporaryDirectory()
        let path = try TestELF.write(elf.build(), to: directory, as: "libfake.so.1")
        return (try ELFFile(path: path), directory)
    }

    private func open(bytes: [UInt8]) throws -> ELFFile {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The file stays mapped after it is unlinked.
        return try ELFFile(path: try TestELF.write(bytes, to: directory, as: "file"))
    }

    @Test func headerSectionsAndSegments() throws {
        let (elf, directory) = try open(TestELF())
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(elf.fileType == 3)
        #expect(elf.machine == ELFFile.machineX86_64)
        #expect(elf.sections.map(\.name) == ["", ".text", ".note.gnu.build-id", ".data", ".bss", ".dynsym", ".dynstr",
                                             ".symtab", ".strtab", ".gnu_debuglink", ".shstrtab"])
        let text = try #require(elf.section(named: ".text"))
        #expect(text.offset == 0x1000 && text.size == UInt64(TestELF.textBytes.count) && text.flags == 6)
        #expect(try elf.contents(of: text) == TestELF.textBytes)
        #expect(try elf.contents(ofSectionNamed: ".data") == TestELF.dataBytes)
        // .bss occupies no file bytes: not returned as a section with contents.
        #expect(elf.section(named: ".bss") == nil)
        #expect(elf.sections.contains { $0.name == ".bss" && $0.type == ELFSection.typeNoBits })
        #expect(try elf.contents(ofSectionNamed: ".nothing") == nil)
        #expect(elf.loadSegments.count == 2)
        #expect(elf.programHeaders.count == 3)
        #expect(!elf.hasDebugInfo)
    }

    @Test func symbolsFromDynsymThenSymtab() throws {
        let (elf, directory) = try open(TestELF())
        defer { try? FileManager.default.removeItem(at: directory) }
        let runtime = try #require(elf.symbol(named: "_PyRuntime"))
        // .dynsym wins over .symtab's different value.
        #expect(runtime.value == TestELF.dataAddress && runtime.size == 64)
        #expect(runtime.type == ELFSymbol.typeObject && runtime.binding == 1 && runtime.isDefined)
        let call = try #require(elf.symbol(named: "PyObject_Call"))
        #expect(call.value == 0x1010 && call.type == ELFSymbol.typeFunction)
        // Only in .symtab (a static variable, as in 2.7/3.6's interp_head).
        let interpHead = try #require(elf.symbol(named: "interp_head"))
        #expect(interpHead.value == TestELF.dataAddress + 8 && interpHead.binding == 0)
        // Undefined (imported) symbols and prefixes of names are not matches.
        #expect(elf.symbol(named: "malloc") == nil)
        #expect(elf.symbol(named: "_PyRun") == nil)
        #expect(elf.symbol(named: "_PyRuntimeX") == nil)
        #expect(elf.symbol(named: "") == nil)
        let all = elf.allSymbols().map(\.name)
        #expect(all.sorted() == ["PyObject_Call", "_PyRuntime", "_PyRuntime", "interp_head", "static_helper"])
    }

    @Test func buildIDAndDebugLink() throws {
        let (elf, directory) = try open(TestELF())
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(elf.buildID == Array(0xa0...0xb3))
        #expect(elf.buildIDHex == "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3")
        let link = try #require(elf.debugLink)
        #expect(link.name == "libfake.so.1.debug" && link.crc == 0xdead_beef)

        // Without either.
        var bare = TestELF()
        bare.buildID = nil
        bare.debugLink = nil
        let (plain, plainDirectory) = try open(bare)
        defer { try? FileManager.default.removeItem(at: plainDirectory) }
        #expect(plain.buildID == nil && plain.buildIDHex == nil)
        #expect(plain.debugLink == nil)

        // A short build-id with a leading zero byte keeps its zeros in hex.
        var short = TestELF()
        short.buildID = [0x00, 0x0f, 0xf0]
        let (shortID, shortDirectory) = try open(short)
        defer { try? FileManager.default.removeItem(at: shortDirectory) }
        #expect(shortID.buildIDHex == "000ff0")
    }

    @Test func buildIDFromTheNoteSegmentWhenSectionHeadersAreStripped() throws {
        var stripped = TestELF()
        stripped.withSectionHeaders = false
        let (elf, directory) = try open(stripped)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(elf.sections.isEmpty)
        #expect(elf.buildIDHex == "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3")
        #expect(elf.symbol(named: "_PyRuntime") == nil)
        #expect(elf.debugLink == nil)
        #expect(elf.bytes(atVirtualAddress: TestELF.dataAddress, count: 4) == Array(TestELF.dataBytes.prefix(4)))
    }

    @Test func compressedSectionsAreInflated() throws {
        var elf = TestELF()
        elf.extraSections = [
            (".debug_str", ELFSection.flagCompressed, TestELF.compressedSection(ELFFileTests.debugStrings)),
            (".debug_line_str", 0, Array("plain\0".utf8)),
            (".debug_bad_stream", ELFSection.flagCompressed, Array(TestELF.compressedSection([1, 2, 3]).prefix(24)) + [0xde, 0xad, 0xbe, 0xef]),
            (".debug_wrong_size", ELFSection.flagCompressed, TestELF.compressedSection(Array("abc".utf8), declaredSize: 10)),
            (".debug_zstd", ELFSection.flagCompressed, TestELF.compressedSection(Array("abc".utf8), type: 2)),
            (".debug_huge_size", ELFSection.flagCompressed, TestELF.compressedSection(Array("abc".utf8), declaredSize: 1 << 40)),
            (".debug_short_header", ELFSection.flagCompressed, [1, 0, 0, 0, 0, 0, 0, 0]),
        ]
        let (file, directory) = try open(elf)
        defer { try? FileManager.default.removeItem(at: directory) }
        let compressed = try #require(file.section(named: ".debug_str"))
        #expect(compressed.size < UInt64(ELFFileTests.debugStrings.count))
        #expect(try file.contents(of: compressed) == ELFFileTests.debugStrings)
        // Cached: the same bytes again.
        #expect(try file.contents(ofSectionNamed: ".debug_str") == ELFFileTests.debugStrings)
        #expect(try file.contents(ofSectionNamed: ".debug_line_str") == Array("plain\0".utf8))
        for name in [".debug_bad_stream", ".debug_wrong_size", ".debug_zstd", ".debug_huge_size", ".debug_short_header"] {
            #expect(throws: ObjectFileError.badCompression(path: file.path, section: name), "\(name)") {
                try file.contents(ofSectionNamed: name)
            }
        }
    }

    @Test func bytesAtVirtualAddressesComeFromLoadSegments() throws {
        for base: UInt64 in [0, 0x40_0000] {
            var elf = TestELF()
            elf.base = base
            elf.fileType = base == 0 ? 3 : 2
            let (file, directory) = try open(elf)
            defer { try? FileManager.default.removeItem(at: directory) }
            let data = base + TestELF.dataAddress
            #expect(file.bytes(atVirtualAddress: data, count: 64) == TestELF.dataBytes)
            #expect(file.bytes(atVirtualAddress: data + 60, count: 4) == Array(TestELF.dataBytes.suffix(4)))
            #expect(file.bytes(atVirtualAddress: base + 0x1000, count: 3) == Array(TestELF.textBytes.prefix(3)))
            #expect(file.bytes(atVirtualAddress: data + 64, count: 0) == [])
            // Past the file-backed part (into .bss) or outside every segment: not in the file.
            #expect(file.bytes(atVirtualAddress: data + 60, count: 8) == nil)
            #expect(file.bytes(atVirtualAddress: data + 0x100, count: 1) == nil)
            #expect(file.bytes(atVirtualAddress: base + 0x10_0000, count: 1) == nil)
            #expect(file.bytes(atVirtualAddress: data, count: -1) == nil)
            #expect(file.bytes(atVirtualAddress: UInt64.max - 2, count: 8) == nil)
        }
    }

    // MARK: Bad files

    @Test func filesThatAreNotELF64LittleEndianAreRejected() throws {
        #expect(throws: ObjectFileError.self) { try open(bytes: []) }
        #expect(throws: ObjectFileError.self) { try open(bytes: Array("#!/bin/sh\necho not elf\n".utf8) + [UInt8](repeating: 0, count: 64)) }
        let valid = TestELF().build()
        // Magic alone, shorter than a header.
        let short = try? open(bytes: Array(valid.prefix(40)))
        #expect(short == nil)
        var thirtyTwo = valid
        thirtyTwo[4] = 1
        #expect(throws: ObjectFileError.self) { try open(bytes: thirtyTwo) }
        var bigEndian = valid
        bigEndian[5] = 2
        #expect(throws: ObjectFileError.self) { try open(bytes: bigEndian) }
        let missing = #expect(throws: ObjectFileError.self) { try ELFFile(path: "/nonexistent/pytap/file") }
        guard case .cannotOpen(let path, _) = missing else {
            Issue.record("expected cannotOpen, got \(String(describing: missing))")
            return
        }
        #expect(path == "/nonexistent/pytap/file")
    }

    @Test func headerTablesOutsideTheFileAreTruncationErrors() throws {
        let valid = TestELF().build()
        var phoff = valid
        phoff.set(UInt64(valid.count - 10), at: 32)
        #expect(throws: ObjectFileError.self) { try open(bytes: phoff) }
        var phnum = valid
        phnum.set(UInt16(0xffff), at: 56)
        #expect(throws: ObjectFileError.self) { try open(bytes: phnum) }
        var shoff = valid
        shoff.set(UInt64(valid.count + 100), at: 40)
        #expect(throws: ObjectFileError.self) { try open(bytes: shoff) }
        var shnum = valid
        shnum.set(UInt16(0xfff0), at: 60)
        #expect(throws: ObjectFileError.self) { try open(bytes: shnum) }
        var shentsize = valid
        shentsize.set(UInt16(32), at: 58)
        #expect(throws: ObjectFileError.self) { try open(bytes: shentsize) }
        // A section whose bytes lie past the end: opening works, reading it does not.
        var section = valid
        let textHeader = TestELF.sectionHeaderOffset(valid) + 64
        section.set(UInt64(valid.count * 2), at: textHeader + 24)
        let file = try open(bytes: section)
        #expect(throws: ObjectFileError.self) { try file.contents(ofSectionNamed: ".text") }
        // The same for a symbol table: no symbols rather than an error.
        var symbols = valid
        let dynsymHeader = TestELF.sectionHeaderOffset(valid) + 5 * 64
        symbols.set(UInt64.max - 8, at: dynsymHeader + 24)
        #expect(try open(bytes: symbols).symbol(named: "PyObject_Call") == nil)
    }

    /// Every accessor, so that each table a file claims is looked at.
    private func exercise(_ file: ELFFile) {
        _ = file.buildIDHex
        _ = file.debugLink
        _ = file.symbol(named: "_PyRuntime")
        _ = file.allSymbols()
        for section in file.sections { _ = try? file.contents(of: section) }
        _ = file.bytes(atVirtualAddress: TestELF.dataAddress, count: 16)
        _ = file.bytes(atVirtualAddress: 0x1000, count: 16)
    }

    @Test func fileCutShortAnywhereIsRejected() throws {
        // The section headers come last, so every cut loses some table the header claims.
        let valid = TestELF().build()
        for length in Array(stride(from: 0, to: valid.count, by: 37)) + [63, 64, 231, valid.count - 1] {
            #expect(throws: ObjectFileError.self, "cut at \(length)") { try open(bytes: Array(valid.prefix(length))) }
        }
        exercise(try open(bytes: valid))
    }

    @Test func randomlyCorruptedHeadersNeverTrap() throws {
        var random = LineTableTests.SplitMix64(state: 0xe1f)
        let valid = TestELF().build()
        let shoff = TestELF.sectionHeaderOffset(valid)
        // Bytes worth corrupting: the ELF header, program headers, note and section headers.
        let interesting = Array(0..<232) + Array(TestELF.noteOffset..<(TestELF.noteOffset + 36)) + Array(shoff..<valid.count)
        for _ in 0..<300 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let offset = interesting.randomElement(using: &random)!
                // Small values, all-ones or a random byte: the kinds of garbage that matter.
                bytes[offset] = [0, 0xff, 1, UInt8.random(in: 0...255, using: &random)].randomElement(using: &random)!
            }
            // Keep away from the fields known to trap (see the known-issue tests below): the
            // table offsets and entry sizes, the section count, and the top bytes of each
            // sh_entsize and p_offset.
            for offset in Array(32..<48) + [54, 55, 58, 59, 60, 61] { bytes[offset] = valid[offset] }
            for index in 0..<(valid.count - shoff) / 64 {
                let entrySize = shoff + index * 64 + 56
                if bytes[entrySize + 7] >= 0x80 { bytes[entrySize + 7] = 0 }
            }
            for index in 0..<3 {
                let segmentOffset = 64 + index * 56 + 8
                if bytes[segmentOffset + 7] >= 0x80 { bytes[segmentOffset + 7] = 0 }
            }
            if let file = try? open(bytes: bytes) { exercise(file) }
        }
    }

    // Garbage headers that once made ELFFile trap. Each runs in a child process, so a trap
    // fails the test instead of the suite.

    @Test func extendedSectionCountNearTheEndOfTheFileDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            var bytes = TestELF().build()
            bytes.set(UInt16(0), at: 60)                       // e_shnum = 0: the count is in section 0
            bytes.set(UInt64(bytes.count - 8), at: 40)         // e_shoff: 8 bytes before the end
            let directory = try TestELF.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            // Section 0 lies past the end of the file: rejected as truncated, not read.
            let file = try? ELFFile(path: try TestELF.write(bytes, to: directory, as: "file"))
            if file != nil { exit(1) }
        }
    }

    @Test func extendedSectionCountWithTheHighBitSetDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            var bytes = TestELF().build()
            let shoff = TestELF.sectionHeaderOffset(bytes)
            bytes.set(UInt16(0), at: 60)
            bytes.set(UInt64.max, at: shoff + 32)              // section 0's sh_size
            let directory = try TestELF.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            _ = try? ELFFile(path: try TestELF.write(bytes, to: directory, as: "file"))
        }
    }

    @Test func symbolTableWithAHugeEntrySizeDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            var bytes = TestELF().build()
            let dynsymHeader = TestELF.sectionHeaderOffset(bytes) + 5 * 64
            bytes.set(UInt64.max, at: dynsymHeader + 56)       // .dynsym sh_entsize
            let directory = try TestELF.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = try ELFFile(path: try TestELF.write(bytes, to: directory, as: "file"))
            _ = file.symbol(named: "_PyRuntime")
        }
    }

    @Test func loadSegmentWithAHugeFileOffsetDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            var bytes = TestELF().build()
            bytes.set(UInt64.max - 0x10, at: 64 + 56 + 8)      // second PT_LOAD's p_offset
            let directory = try TestELF.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = try ELFFile(path: try TestELF.write(bytes, to: directory, as: "file"))
            _ = file.bytes(atVirtualAddress: TestELF.dataAddress + 0x20, count: 4)
        }
    }
}

/// `DebugFileLocator` search order and matching, and `LoadedObject` load bias.
@Suite struct ELFDebugFileAndLoadBiasTests {
    @Test func candidatesFollowGDBsOrderForEachRoot() throws {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var elf = TestELF()
        elf.debugLink = ("libpython3.12.so.1.0.debug", 1)
        let file = try ELFFile(path: try TestELF.write(elf.build(), to: directory, as: "libpython3.12.so.1.0"))
        let locator = DebugFileLocator(roots: ["/proc/123/root", ""])
        let target = "/usr/lib/x86_64-linux-gnu/libpython3.12.so.1.0"
        let id = "a0/a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3"
        let link = "libpython3.12.so.1.0.debug"
        #expect(locator.candidates(for: file, targetPath: target) == [
            "/proc/123/root/usr/lib/debug/.build-id/\(id).debug",
            "/usr/lib/debug/.build-id/\(id).debug",
            "/proc/123/root/usr/lib/x86_64-linux-gnu/\(link)",
            "/proc/123/root/usr/lib/x86_64-linux-gnu/.debug/\(link)",
            "/proc/123/root/usr/lib/debug/usr/lib/x86_64-linux-gnu/\(link)",
            "/usr/lib/x86_64-linux-gnu/\(link)",
            "/usr/lib/x86_64-linux-gnu/.debug/\(link)",
            "/usr/lib/debug/usr/lib/x86_64-linux-gnu/\(link)",
        ])
        // No build-id: only the debug link; neither: nowhere to look.
        var linkOnly = TestELF()
        linkOnly.buildID = nil
        let linkFile = try ELFFile(path: try TestELF.write(linkOnly.build(), to: directory, as: "link-only"))
        #expect(locator.candidates(for: linkFile, targetPath: "/opt/py/lib/libfake.so.1") == [
            "/proc/123/root/opt/py/lib/libfake.so.1.debug", "/proc/123/root/opt/py/lib/.debug/libfake.so.1.debug",
            "/proc/123/root/usr/lib/debug/opt/py/lib/libfake.so.1.debug",
            "/opt/py/lib/libfake.so.1.debug", "/opt/py/lib/.debug/libfake.so.1.debug",
            "/usr/lib/debug/opt/py/lib/libfake.so.1.debug",
        ])
        linkOnly.debugLink = nil
        let neither = try ELFFile(path: try TestELF.write(linkOnly.build(), to: directory, as: "neither"))
        #expect(locator.candidates(for: neither, targetPath: "/x/y").isEmpty)
    }

    @Test func debugFileIsTheFirstELFCandidateWithTheSameBuildID() throws {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let object = try ELFFile(path: try TestELF.write(TestELF().build(), to: directory, as: "target/usr/lib/libfake.so.1"))
        let rootA = directory.appendingPathComponent("rootA"), rootB = directory.appendingPathComponent("rootB")
        let idPath = "usr/lib/debug/.build-id/a0/a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3.debug"
        // Root A: a debug file of another build; then a non-ELF file at the debug-link place.
        var other = TestELF()
        other.buildID = Array(repeating: 0x11, count: 20)
        try TestELF.write(other.build(), to: rootA, as: idPath)
        try TestELF.write(Array("not an ELF file".utf8), to: rootA, as: "usr/lib/libfake.so.1.debug")
        // Root B: the right one, found by its debug link.
        let right = try TestELF.write(TestELF().build(), to: rootB, as: "usr/lib/.debug/libfake.so.1.debug")
        let locator = DebugFileLocator(roots: [rootA.path, rootB.path])
        #expect(locator.debugFile(for: object, targetPath: "/usr/lib/libfake.so.1")?.path == right)
        // With no candidate present, none.
        #expect(DebugFileLocator(roots: [directory.appendingPathComponent("empty").path])
            .debugFile(for: object, targetPath: "/usr/lib/libfake.so.1") == nil)
    }

    @Test func loadBiasOfAPIELibrary() throws {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let elf = try ELFFile(path: try TestELF.write(TestELF().build(), to: directory, as: "libfake.so.1"))
        let start: UInt64 = 0x7f12_3400_0000
        let mappings = [
            MemoryMapping(start: start, end: start + 0x3000, executable: true, fileOffset: 0, path: "/usr/lib/libfake.so.1"),
            // The RW segment: file offset 0x3000 mapped at link address 0x4000.
            MemoryMapping(start: start + 0x4000, end: start + 0x5000, writable: true, fileOffset: 0x3000, path: "/usr/lib/libfake.so.1"),
        ]
        let loaded = try LoadedObject(path: "/usr/lib/libfake.so.1", elf: elf, mappings: mappings,
                                      debugLocator: DebugFileLocator(roots: []))
        #expect(loaded.loadBias == start)
        #expect(loaded.address(ofSymbol: "_PyRuntime") == start + TestELF.dataAddress)
        #expect(loaded.address(ofSymbol: "interp_head") == start + TestELF.dataAddress + 8)
        #expect(loaded.address(ofSymbol: "missing") == nil)
        #expect(loaded.contains(start + 0x10) && loaded.contains(start + 0x4fff))
        #expect(!loaded.contains(start + 0x3800) && !loaded.contains(start + 0x5000))

        // Only the data mapping is known: the bias comes from the segment it maps.
        let dataOnly = try LoadedObject(path: "/usr/lib/libfake.so.1", elf: elf, mappings: [mappings[1]],
                                        debugLocator: DebugFileLocator(roots: []))
        #expect(dataOnly.loadBias == start)
    }

    @Test func loadBiasOfANonPIEExecutableIsZero() throws {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var executable = TestELF()
        executable.fileType = 2
        executable.base = 0x40_0000
        let elf = try ELFFile(path: try TestELF.write(executable.build(), to: directory, as: "python"))
        #expect(elf.fileType == 2)
        let mappings = [
            MemoryMapping(start: 0x40_0000, end: 0x40_3000, executable: true, fileOffset: 0, path: "/usr/bin/python"),
            MemoryMapping(start: 0x40_4000, end: 0x40_5000, writable: true, fileOffset: 0x3000, path: "/usr/bin/python"),
        ]
        let loaded = try LoadedObject(path: "/usr/bin/python", elf: elf, mappings: mappings, debugLocator: DebugFileLocator(roots: []))
        #expect(loaded.loadBias == 0)
        #expect(loaded.address(ofSymbol: "_PyRuntime") == 0x40_4000)
    }

    @Test func loadedObjectWithoutAMatchingMappingIsRejected() throws {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let elf = try ELFFile(path: try TestELF.write(TestELF().build(), to: directory, as: "libfake.so.1"))
        let unrelated = [MemoryMapping(start: 0x1000, end: 0x2000, fileOffset: 0x9000, path: "/usr/lib/libfake.so.1")]
        #expect(throws: ObjectFileError.self) {
            try LoadedObject(path: "/usr/lib/libfake.so.1", elf: elf, mappings: unrelated, debugLocator: DebugFileLocator(roots: []))
        }
    }
}
