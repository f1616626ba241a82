import Foundation
import Testing
import PyTap

/// Writes small x86_64 ELF core files: notes (NT_PRSTATUS per thread, NT_PRPSINFO, NT_AUXV,
/// NT_FILE) and PT_LOAD segments, some dumped, some left out like read-only file pages.
struct TestCore {
    struct Segment {
        var address: UInt64
        var size: UInt64
        /// The dumped bytes (fewer than `size`, or none: left out of the core).
        var dumped: [UInt8]
        var flags: UInt32 = 4
    }

    var pid: Int32 = 4321
    var threads: [(tid: Int32, systemCall: Int64)] = [(4321, -1), (4322, 202)]
    var name = "python3.12"
    var arguments = "python3.12 app.py --flag"
    var files: [(start: UInt64, end: UInt64, offset: UInt64, path: String)] = []
    var auxv: [(UInt64, UInt64)] = []
    var segments: [Segment] = []

    static func note(_ type: UInt32, _ desc: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(5)
        w.u32(UInt32(desc.count))
        w.u32(type)
        w.append(Array("CORE".utf8) + [0])
        w.pad(to: 4)
        w.append(desc)
        w.pad(to: 4)
        return w.bytes
    }

    func build() -> [UInt8] {
        var notes = [UInt8]()
        var info = [UInt8](repeating: 0, count: 136)
        info.set(pid, at: 24)
        info.replaceSubrange(40..<(40 + min(15, name.utf8.count)), with: Array(name.utf8.prefix(15)))
        info.replaceSubrange(56..<(56 + min(79, arguments.utf8.count)), with: Array(arguments.utf8.prefix(79)))
        notes += TestCore.note(3, info)
        for thread in threads {
            var status = [UInt8](repeating: 0, count: 336)
            status.set(thread.tid, at: 32)
            status.set(thread.systemCall, at: 112 + 15 * 8)  // orig_rax
            notes += TestCore.note(1, status)
        }
        var auxBytes = ByteWriter()
        for (key, value) in auxv + [(0, 0)] {
            auxBytes.u64(key)
            auxBytes.u64(value)
        }
        notes += TestCore.note(6, auxBytes.bytes)
        var fileNote = ByteWriter()
        fileNote.u64(UInt64(files.count))
        fileNote.u64(4096)
        for file in files {
            fileNote.u64(file.start)
            fileNote.u64(file.end)
            fileNote.u64(file.offset / 4096)
        }
        for file in files { fileNote.append(Array(file.path.utf8) + [0]) }
        notes += TestCore.note(0x4649_4c45, fileNote.bytes)

        let headerCount = 1 + segments.count
        let notesOffset = 64 + 56 * headerCount
        var dataOffset = (notesOffset + notes.count + 4095) / 4096 * 4096
        var w = ByteWriter()
        w.append([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8))
        w.u16(4)            // ET_CORE
        w.u16(62)           // x86_64
        w.u32(1)
        w.u64(0)            // entry
        w.u64(64)           // phoff
        w.u64(0)            // shoff
        w.u32(0)
        w.u16(64)
        w.u16(56)
        w.u16(UInt16(headerCount))
        w.u16(64)
        w.u16(0)
        w.u16(0)
        func header(_ type: UInt32, _ flags: UInt32, _ offset: Int, _ address: UInt64, _ fileSize: Int, _ memorySize: UInt64) {
            w.u32(type)
            w.u32(flags)
            w.u64(UInt64(offset))
            w.u64(address)
            w.u64(0)
            w.u64(UInt64(fileSize))
            w.u64(memorySize)
            w.u64(4096)
        }
        header(4, 0, notesOffset, 0, notes.count, 0)
        var data = [UInt8]()
        for segment in segments {
            header(1, segment.flags, dataOffset, segment.address, segment.dumped.count, segment.size)
            data += segment.dumped
            dataOffset += segment.dumped.count
        }
        w.append(notes)
        w.pad(to: 4096)
        w.append(data)
        return w.bytes
    }
}

@Suite struct CoreFileTests {
    static let heap: UInt64 = 0x5555_0000_0000
    static let library: UInt64 = 0x7f00_0000_0000

    /// A core whose heap segment is dumped and whose library (a TestELF on disk) is not,
    /// except for its first three pages (headers and build-id note) when `dumpHeaders`.
    private func makeCore(in directory: URL, dumpHeaders: Bool = true, onDisk: TestELF = TestELF()) throws -> (String, String, [UInt8]) {
        let original = TestELF().build()
        let libraryPath = try TestELF.write(onDisk.build(), to: directory, as: "lib/libfake.so.1")
        var core = TestCore()
        core.files = [(CoreFileTests.library, CoreFileTests.library + 0x4000, 0, libraryPath)]
        core.auxv = [(3, CoreFileTests.library + 64)]
        core.segments = [
            .init(address: CoreFileTests.heap, size: 0x2000, dumped: (0..<0x2000).map { UInt8(truncatingIfNeeded: $0 * 7) }, flags: 6),
            .init(address: CoreFileTests.library, size: 0x4000, dumped: dumpHeaders ? Array(original[0..<0x3000]) : [], flags: 5),
            .init(address: 0x7ffe_0000_0000, size: 0x1000, dumped: []),  // anonymous, left out
        ]
        let bytes = core.build()
        return (try TestELF.write(bytes, to: directory, as: "core"), libraryPath, bytes)
    }

    @Test func notesGiveThreadsProcessFilesAndRunStates() throws {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (path, libraryPath, _) = try makeCore(in: directory)
        let target = try CoreFileTarget(path: path)
        #expect(target.pid == 4321)
        #expect(target.name() == "python3.12")
        #expect(target.commandLine() == ["python3.12", "app.py", "--flag"])
        #expect(try target.threadIDs() == [4321, 4322])
        #expect(target.runState(tid: 4321) == .running)
        #expect(target.runState(tid: 4322) == .idle)   // stopped in a system call
        #expect(target.runState(tid: 1) == nil)
        #expect(target.executablePath() == libraryPath)  // the file holding AT_PHDR
        let mappings = try target.mappings()
        #expect(mappings.map(\.path) == [nil, libraryPath, nil])
        #expect(mappings.map(\.writable) == [true, false, false])
    }

    @Test func memoryComesFromTheCoreThenFromTheMappedFile() throws {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (path, _, _) = try makeCore(in: directory)
        let target = try CoreFileTarget(path: path)
        let memory = target.memory
        #expect(try memory.readBytes(CoreFileTests.heap + 0x10, count: 3) == [0x70, 0x77, 0x7e])
        // Page 3 of the library was left out: read from the file, whose .data is at 0x3000.
        #expect(try memory.readBytes(CoreFileTests.library + 0x3000, count: 4) == Array(TestELF.dataBytes[0..<4]))
        // A read across the dumped part and the file part.
        let across = try memory.readBytes(CoreFileTests.library + 0x2ffe, count: 4)
        #expect(Array(across[2...]) == Array(TestELF.dataBytes[0..<2]))
        #expect(throws: MemoryReadError.self) { try memory.readBytes(0x7ffe_0000_0000, count: 8) }
        #expect(throws: MemoryReadError.self) { try memory.readBytes(CoreFileTests.heap + 0x1ffc, count: 8) }
        #expect(throws: MemoryReadError.self) { try memory.readBytes(0x10, count: 8) }
    }

    @Test func aMappedFileThatChangedIsNamed() throws {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var changed = TestELF()
        changed.buildID = Array(0x10...0x23)
        let (path, libraryPath, _) = try makeCore(in: directory, onDisk: changed)
        #expect {
            _ = try CoreFileTarget(path: path)
        } throws: { error in
            guard case CoreFileError.fileChanged(let named, _, _, _) = error else { return false }
            return named == libraryPath && "\(error)".contains(libraryPath)
        }
        // Without the headers in the core there is nothing to compare: the file is used.
        let (unchecked, _, _) = try makeCore(in: directory, dumpHeaders: false, onDisk: changed)
        _ = try CoreFileTarget(path: unchecked)
    }

    @Test func filesAreFoundUnderTheSysroot() throws {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (path, libraryPath, _) = try makeCore(in: directory)
        let sysroot = directory.appendingPathComponent("sysroot").path
        try FileManager.default.createDirectory(atPath: sysroot + directory.path + "/lib", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: libraryPath, toPath: sysroot + libraryPath)
        let without = try CoreFileTarget(path: path)
        #expect(throws: MemoryReadError.self) { try without.memory.readBytes(CoreFileTests.library + 0x3000, count: 4) }
        #expect(throws: CoreFileError.self) { try without.openObject(path: libraryPath, mappings: []) }
        let with = try CoreFileTarget(path: path, sysroot: sysroot + "/")
        #expect(try with.memory.readBytes(CoreFileTests.library + 0x3000, count: 4) == Array(TestELF.dataBytes[0..<4]))
        #expect(try with.openObject(path: libraryPath, mappings: []).buildID == TestELF().buildID)
    }

    @Test func notACoreIsAnError() throws {
        let directory = try TestELF.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let library = try TestELF.write(TestELF().build(), to: directory, as: "lib.so")
        #expect(throws: CoreFileError.notCore(path: library)) { try CoreFileTarget(path: library) }
        let garbage = try TestELF.write(Array(repeating: 0x41, count: 5000), to: directory, as: "garbage")
        #expect(throws: CoreFileError.self) { try CoreFileTarget(path: garbage) }
        var core = TestCore()
        core.threads = []
        let noThreads = try TestELF.write(core.build(), to: directory, as: "nothreads")
        #expect(throws: CoreFileError.self) { try CoreFileTarget(path: noThreads) }
    }

    @Test func everyErrorReadsAsOneSentence() {
        let errors: [CoreFileError] = [
            .unreadable(path: "/c", reason: .notELF(path: "/c")), .notCore(path: "/c"),
            .unsupported(path: "/c", what: "machine 3"), .truncated(path: "/c", expected: 8192, actual: 100),
            .truncated(path: "/c", expected: UInt64.max, actual: 100), .malformed(path: "/c", what: "a note at offset 4"),
            .fileChanged(path: "/usr/bin/python3", core: "aa", found: "bb", foundAt: "/usr/bin/python3"),
            .missingFile(path: "/usr/bin/python3", tried: ["/r/usr/bin/python3"]),
        ]
        for error in errors {
            let text = "\(error)"
            #expect(text.contains("/"), "\(text)")
            #expect(!text.contains("CoreFileError") && !text.contains("(path:") && !text.contains("\n"), "\(text)")
        }
    }

    // Truncated and corrupted cores: errors, never traps (each in a child process).

    @Test func everyTruncationIsAnErrorNotATrap() async {
        await #expect(processExitsWith: .success) {
            let directory = try TestELF.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let (_, _, bytes) = try CoreFileTests().makeCore(in: directory)
            for length in stride(from: 0, to: bytes.count, by: 61) {
                let path = try TestELF.write(Array(bytes[0..<length]), to: directory, as: "cut")
                if (try? CoreFileTarget(path: path)) != nil { exit(1) }
            }
        }
    }

    @Test func corruptedCoresDoNotTrap() async {
        await #expect(processExitsWith: .success) {
            let directory = try TestELF.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let (_, _, bytes) = try CoreFileTests().makeCore(in: directory)
            var generator = SystemRandomNumberGenerator()
            for round in 0..<300 {
                var damaged = bytes
                // Damage the headers and notes (the first page), where every count and offset is.
                for _ in 0..<(1 + round % 8) {
                    damaged[Int.random(in: 0..<4096, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
                let path = try TestELF.write(damaged, to: directory, as: "bad")
                if let target = try? CoreFileTarget(path: path) {
                    _ = try? target.mappings()
                    _ = target.executablePath()
                    for tid in (try? target.threadIDs()) ?? [] { _ = target.runState(tid: tid) }
                    _ = try? target.memory.readBytes(CoreFileTests.library + 0x2ff0, count: 64)
                    _ = try? target.memory.readBytes(CoreFileTests.heap, count: 64)
                }
            }
        }
    }
}
