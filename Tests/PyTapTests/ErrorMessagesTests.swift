import Testing
@testable import pytap
import PyTap

/// Every case of every error the library throws, through the CLI's formatter: what a user
/// reads must be a sentence, never a Swift enum dump like `unmapped(address: 4096, length: 8)`.
@Suite struct ErrorMessagesTests {
    static let memory: [MemoryReadError] = [
        .unmapped(address: 0x1000, length: 8), .processGone, .permissionDenied,
        .tooLarge(address: 0x2000, length: 1 << 30), .fieldOutOfRange(offset: 16, size: 8, available: 20), .system(errno: 5),
    ]
    static let objects: [ObjectReadError] = [
        .implausible(what: "str length", value: -1), .unexpectedType(expected: "code", found: "int"), .unsupportedString(kind: 3),
    ]
    static let layouts: [LayoutError] = [
        .unsupportedVersion("3.99.0"), .missingField(.frameBack, version: "3.10.13"),
        .badDebugOffsets("cookie xdebugpy missing"),
    ]
    static let files: [ObjectFileError] = [
        .notELF(path: "/x"), .unsupported(path: "/x", what: "32-bit ELF"), .truncated(path: "/x", what: "section headers"),
        .badCompression(path: "/x", section: ".debug_info"), .cannotOpen(path: "/x", reason: "No such file or directory"),
    ]
    static let processes: [ProcessError] = [
        .noSuchProcess(pid: 99999), .permissionDenied(pid: 1, operation: "reading maps"), .exited(pid: 7),
        .system(pid: 7, operation: "reading maps", errno: 5),
    ]
    static let attaches: [AttachError] = [
        .notPython(pid: 7, name: "sleep", unreadable: ["/usr/lib/libpython3.12.so.1.0 (/usr/lib/libpython3.12.so.1.0 is not an ELF file)"]),
        .notPython(pid: 7, name: "sleep", unreadable: []),
        .notInitialized(pid: 7), .unsupportedVersion(pid: 7, version: "3.99.0"), .unknownVersion(pid: 7, path: "/usr/bin/python"),
        .missingSymbols(pid: 7, path: "/usr/bin/python3.11", symbols: ["_PyRuntime"]), .freeThreaded(pid: 7, version: "3.14.0t"),
    ]

    /// One sample of each case (an exhaustive switch: a new case fails to compile here until it has a sample).
    static func caseName(_ error: Error) -> String {
        switch error {
        case let e as MemoryReadError:
            switch e { case .unmapped: "unmapped"; case .processGone: "processGone"; case .permissionDenied: "permissionDenied"
                       case .tooLarge: "tooLarge"; case .fieldOutOfRange: "fieldOutOfRange"; case .system: "system" }
        case let e as ObjectReadError:
            switch e { case .implausible: "implausible"; case .unexpectedType: "unexpectedType"; case .unsupportedString: "unsupportedString" }
        case let e as LayoutError:
            switch e { case .unsupportedVersion: "unsupportedVersion"; case .missingField: "missingField"
                       case .badDebugOffsets: "badDebugOffsets" }
        case let e as ObjectFileError:
            switch e { case .notELF: "notELF"; case .unsupported: "unsupported"; case .truncated: "truncated"
                       case .badCompression: "badCompression"; case .cannotOpen: "cannotOpen" }
        case let e as ProcessError:
            switch e { case .noSuchProcess: "noSuchProcess"; case .permissionDenied: "permissionDenied"; case .exited: "exited"; case .system: "system" }
        case let e as AttachError:
            switch e { case .notPython: "notPython"; case .notInitialized: "notInitialized"; case .unsupportedVersion: "unsupportedVersion"
                       case .unknownVersion: "unknownVersion"; case .missingSymbols: "missingSymbols"; case .freeThreaded: "freeThreaded" }
        default: "\(type(of: error))"
        }
    }

    static var all: [Error] {
        memory + objects + layouts + files + processes + attaches
            + memory.map { StructureReadError(what: "thread state", address: 0x7f00, cause: $0) }
            + [DWARFError.typeNotFound("PyObject"), ReportError.invalidRate(0), SystemCallError("open /proc/1/maps", .noSuchFileOrDirectory)]
    }

    @Test func everyCaseHasASample() {
        #expect(Set(Self.memory.map(Self.caseName)).count == 6)
        #expect(Set(Self.objects.map(Self.caseName)).count == 3)
        #expect(Set(Self.layouts.map(Self.caseName)).count == 3)
        #expect(Set(Self.files.map(Self.caseName)).count == 5)
        #expect(Set(Self.processes.map(Self.caseName)).count == 4)
        #expect(Set(Self.attaches.map(Self.caseName)).count == 6)
    }

    /// A Swift dump names a case with labelled arguments (`tooLarge(address: …`) or a type.
    static func looksLikeADump(_ text: String) -> Bool {
        let typeNames = ["MemoryReadError", "ObjectReadError", "LayoutError", "ObjectFileError", "ProcessError", "AttachError",
                         "StructureReadError", "LayoutField", "PyTap."]
        if typeNames.contains(where: text.contains) { return true }
        // identifier(label: — a case with associated values.
        var previous: Character = " "
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "(", previous.isLetter {
                let rest = text[text.index(after: index)...]
                let label = rest.prefix { $0.isLetter }
                if !label.isEmpty, rest.dropFirst(label.count).first == ":" { return true }
            }
            previous = character
            index = text.index(after: index)
        }
        return false
    }

    @Test func theDumpDetectorCatchesDumps() {
        #expect(Self.looksLikeADump("process 1: memory read failed (unmapped(address: 4096, length: 8))"))
        #expect(Self.looksLikeADump("layout problem: missingField(PyTap.LayoutField.frameBack, version: \"3.10\")"))
        #expect(!Self.looksLikeADump("cannot read the thread state at 0x1000: nothing readable is mapped at 0x1000 (8 bytes)"))
    }

    @Test(arguments: [nil, 1] as [Int32?])
    func noMessageIsAnEnumDump(pid: Int32?) {
        for error in Self.all {
            let failure = Failure.from(error, pid: pid)
            #expect(!Self.looksLikeADump(failure.message), "\(Self.caseName(error)): \(failure.message)")
            #expect(!failure.message.isEmpty && !failure.message.contains("\n"))
        }
    }

    @Test func structureReadsSayWhatAndWhere() {
        let failure = Failure.from(StructureReadError(what: "thread state", address: 0x7f00_1000, cause: .unmapped(address: 0x7f00_1000, length: 64)), pid: 1)
        #expect(failure.message.contains("thread state at 0x7f001000"))
        #expect(failure.status == .failure)
        // A process that is gone is still told as such through the wrapper.
        #expect(Failure.from(StructureReadError(what: "thread state", address: 1, cause: .processGone), pid: 1).status == .processExited)
    }

    @Test func unreadableCandidatesAreNamed() {
        let failure = Failure.from(AttachError.notPython(pid: 1, name: "x", unreadable: ["/lib/libpython3.12.so (not an ELF file)"]), pid: 1)
        #expect(failure.status == .notPython)
        #expect(failure.message.contains("could not read /lib/libpython3.12.so (not an ELF file)"))
    }
}

/// Where the target's `_Py_DebugOffsets` disagrees with the table, `dump` prints one note per field.
@Suite struct LayoutMismatchNotesTests {
    @Test func oneNotePerDisagreeingField() throws {
        let version = try #require(PythonVersion(string: "3.13.9"))
        var layout = try PythonLayout(version: version)
        let frame = try layout.require(.tstateFrame)
        let next = try layout.require(.tstateNext)
        layout.apply(targetValues: [.tstateFrame: frame + 8, .tstateNext: next, .interpNext: try layout.require(.interpNext) + 16])
        let notes = layoutMismatchNotes(layout)
        #expect(notes.count == 2)
        #expect(notes.contains { $0.contains("tstateFrame at \(frame + 8)") && $0.contains("table at \(frame)") })
        #expect(notes.allSatisfy { $0.hasPrefix("pytap: note: Python 3.13.9") && $0.hasSuffix("\n") && $0.filter { $0 == "\n" }.count == 1 })
        #expect(notes.allSatisfy { !ErrorMessagesTests.looksLikeADump($0) })
        #expect(layoutMismatchNotes(try PythonLayout(version: version)).isEmpty)
    }
}
