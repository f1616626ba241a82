import Testing
import PyTap

/// `ObjectReader` on str, bytes, int and type names laid out per version.
@Suite struct StringsObjectReaderTests {
    static let pep393Versions = ["3.6.15", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0", "3.14.0"]
    static let allVersions = ["2.7.18"] + pep393Versions

    private func fixture(_ version: String) throws -> (FakeObjects, ObjectReader) {
        let objects = try FakeObjects(version: version)
        return (objects, ObjectReader(memory: objects.memory, layout: objects.layout))
    }

    /// Overwrites the length (3.x str) or size (bytes, 2.7 str) of an object.
    private func setLength(_ value: Int64, of object: UInt64, in objects: FakeObjects, field: LayoutField) {
        objects.memory.i64(value, at: object + objects.offset(field))
    }

    // MARK: str (PEP 393)

    static let samples = [
        "", "hello", "café ÿ", "Ελληνικά – 日本語", "snake 🐍 and 😀",
        String(repeating: "long ascii ", count: 60), String(repeating: "é🐍", count: 150),
    ]

    @Test func sampleStringsCoverEveryKind() {
        #expect(FakeObjects.pep393Data("hello").kind == 1 && FakeObjects.pep393Data("hello").ascii)
        #expect(FakeObjects.pep393Data("café ÿ").kind == 1 && !FakeObjects.pep393Data("café ÿ").ascii)
        #expect(FakeObjects.pep393Data("Ελληνικά – 日本語").kind == 2)
        #expect(FakeObjects.pep393Data("snake 🐍 and 😀").kind == 4)
    }

    @Test(arguments: pep393Versions)
    func compactStringsOfEveryKind(version: String) throws {
        let (objects, reader) = try fixture(version)
        for text in StringsObjectReaderTests.samples {
            #expect(try reader.string(objects.str(text)) == text, "\(version): \(text.prefix(20))")
        }
    }

    @Test(arguments: pep393Versions)
    func legacyStringsReadThroughTheirDataPointer(version: String) throws {
        let (objects, reader) = try fixture(version)
        for text in ["legacy ascii", "Łódź", "x🐍y", String(repeating: "ß", count: 500)] {
            #expect(try reader.string(objects.legacyStr(text)) == text)
        }
        // A data pointer into nothing is a read error, not a crash.
        let broken = objects.legacyStr("gone")
        objects.memory.pointer(FakeInterpreter.unmapped, at: broken + objects.offset(.unicodeData))
        #expect(throws: MemoryReadError.unmapped(address: FakeInterpreter.unmapped, length: 4)) {
            try reader.string(broken)
        }
    }

    @Test(arguments: pep393Versions)
    func stringKindsPytapDoesNotDecodeAreRejected(version: String) throws {
        let (objects, reader) = try fixture(version)
        for kind in [0, 3, 5, 7] {
            let object = objects.str("abc")
            objects.memory.u32(FakeObjects.unicodeState(kind: kind, compact: true, ascii: true), at: object + objects.offset(.unicodeState))
            #expect(throws: ObjectReadError.unsupportedString(kind: kind)) { try reader.string(object) }
        }
    }

    @Test(arguments: pep393Versions)
    func absurdStringLengthsThrowWithoutHugeReads(version: String) throws {
        let (objects, reader) = try fixture(version)
        for length: Int64 in [1 << 40, Int64.max, -1, Int64.min, Int64(ObjectReader.maximumStringLength) + 1] {
            let object = objects.str("short")
            setLength(length, of: object, in: objects, field: .unicodeLength)
            #expect(throws: ObjectReadError.implausible(what: "str length", value: length)) { try reader.string(object) }
            let legacy = objects.legacyStr("short")
            setLength(length, of: legacy, in: objects, field: .unicodeLength)
            #expect(throws: ObjectReadError.implausible(what: "str length", value: length)) { try reader.string(legacy) }
        }
        // The caller's own cap applies too.
        #expect(throws: ObjectReadError.implausible(what: "str length", value: 5)) {
            try reader.string(objects.str("hello"), maximumLength: 4)
        }
        #expect(objects.memory.readLog.map(\.count).max() ?? 0 <= 4096)
    }

    @Test func stringAtAnUnmappedAddressIsAReadError() throws {
        let (_, reader) = try fixture("3.12.1")
        #expect(throws: MemoryReadError.self) { try reader.string(FakeInterpreter.unmapped) }
        #expect(throws: MemoryReadError.self) { try reader.bytes(0) }
    }

    // MARK: 2.7 str and unicode

    @Test func python27StrIsBytesAndUnicodeIsUCS4() throws {
        let (objects, reader) = try fixture("2.7.18")
        #expect(try reader.string(objects.str("hello")) == "hello")
        // A 2.7 str holds bytes; pytap shows them as UTF-8.
        #expect(try reader.string(objects.bytes(Array("café".utf8))) == "café")
        #expect(try reader.string(objects.unicode27("Ωmega 🐍")) == "Ωmega 🐍")
        #expect(try reader.string(objects.unicode27("")) == "")
        #expect(try reader.typeNameOf(objects.unicode27("x")) == "unicode")
        #expect(try reader.typeNameOf(objects.str("x")) == "str")
    }

    @Test func python27AbsurdLengthsThrow() throws {
        let (objects, reader) = try fixture("2.7.18")
        let str = objects.str("abc")
        setLength(1 << 40, of: str, in: objects, field: .varObjectSize)
        #expect(throws: ObjectReadError.implausible(what: "bytes length", value: 1 << 40)) { try reader.string(str) }
        let unicode = objects.unicode27("abc")
        setLength(1 << 40, of: unicode, in: objects, field: .unicodeLength)
        #expect(throws: ObjectReadError.implausible(what: "unicode length", value: 1 << 40)) { try reader.string(unicode) }
        setLength(-3, of: unicode, in: objects, field: .unicodeLength)
        #expect(throws: ObjectReadError.implausible(what: "unicode length", value: -3)) { try reader.string(unicode) }
        #expect(objects.memory.readLog.map(\.count).max() ?? 0 <= 4096)
    }

    // MARK: bytes

    @Test(arguments: allVersions)
    func bytesShortAndLong(version: String) throws {
        let (objects, reader) = try fixture(version)
        let short: [UInt8] = [0, 1, 2, 0x7f, 0x80, 0xff]
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        #expect(try reader.bytes(objects.bytes([])) == [])
        #expect(try reader.bytes(objects.bytes(short)) == short)
        // Longer than the first read's guess: fetched by a second read.
        #expect(try reader.bytes(objects.bytes(long)) == long)
        for size: Int64 in [1 << 40, -5, Int64(LineTable.maximumBytes) + 1] {
            let object = objects.bytes(short)
            setLength(size, of: object, in: objects, field: .varObjectSize)
            #expect(throws: ObjectReadError.implausible(what: "bytes length", value: size)) { try reader.bytes(object) }
        }
        #expect(throws: ObjectReadError.implausible(what: "bytes length", value: 6)) {
            try reader.bytes(objects.bytes(short), maximumLength: 5)
        }
    }

    // MARK: int

    static let integers: [Int64] = [
        0, 1, -1, 42, -42, (1 << 30) - 1, 1 << 30, -(1 << 30), (1 << 60) + 5, -(1 << 62), 0x1234_5678_9abc_def0,
        Int64.max, Int64.min + 1,
    ]

    @Test(arguments: allVersions)
    func integersUpTo64Bits(version: String) throws {
        let (objects, reader) = try fixture(version)
        for value in StringsObjectReaderTests.integers {
            #expect(try reader.integer(objects.int(value)) == value, "\(version): \(value)")
        }
        if objects.traits.longs == .python2 {
            // 2.7 has both int (a C long) and long (digits).
            for value in StringsObjectReaderTests.integers {
                #expect(try reader.integer(objects.int(value, python2Long: true)) == value, "2.7 long \(value)")
            }
            #expect(try reader.typeNameOf(objects.int(5, python2Long: true)) == "long")
        }
    }

    @Test(arguments: allVersions)
    func integersWithTooManyDigitsThrow(version: String) throws {
        let (objects, reader) = try fixture(version)
        let four = objects.long(digits: [1, 2, 3, 4], negative: false)
        #expect(throws: ObjectReadError.implausible(what: "int digits", value: 4)) { try reader.integer(four) }
        // A garbage digit count is capped before anything is read for it.
        let garbage = objects.long(digits: [1], negative: true)
        switch objects.traits.longs {
        case .taggedValue: objects.memory.u64(UInt64(1) << 50 | 2, at: garbage + objects.offset(.longTag))
        default: objects.memory.i64(-(1 << 50), at: garbage + objects.offset(.varObjectSize))
        }
        #expect(throws: ObjectReadError.implausible(what: "int digits", value: 9)) { try reader.integer(garbage) }
    }

    @Test(arguments: ["2.7.18", "3.10.13", "3.12.1"])
    func integersBeyondInt64AreNotSilentlyWrapped(version: String) throws {
        let (objects, reader) = try fixture(version)
        let twoTo63 = objects.long(digits: FakeObjects.digits(1 << 63), negative: false)
        // 2^64 + 5: three digits, the top one beyond bit 63.
        let twoTo64Plus5 = objects.long(digits: [5, 0, 16], negative: false)
        #expect(throws: ObjectReadError.self) { try reader.integer(twoTo63) }
        #expect(throws: ObjectReadError.self) { try reader.integer(twoTo64Plus5) }
    }

    @Test func integerInt64MinDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            let objects = try FakeObjects(version: "3.12.1")
            let reader = ObjectReader(memory: objects.memory, layout: objects.layout)
            let minimum = objects.long(digits: FakeObjects.digits(1 << 63), negative: true)
            let value = try reader.integer(minimum)
            precondition(value == Int64.min)
        }
    }

    // MARK: Objects at the end of a mapping

    /// Copies `size` bytes of `object` to the very end of a fresh page, after which nothing
    /// is mapped (the last object of a pymalloc arena can sit there).
    private func moveToEndOfPage(_ object: UInt64, size: Int, in objects: FakeObjects, page: UInt64) -> UInt64 {
        objects.memory.map(at: page, size: 4096)
        let target = page + 4096 - UInt64(size)
        objects.memory.write(objects.memory.peek(object, count: size)!, at: target)
        return target
    }

    @Test(arguments: ["2.7.18", "3.12.1"])
    func shortObjectsEndingAtTheEndOfAMappingAreReadable(version: String) throws {
        let (objects, reader) = try fixture(version)
        let pep393 = objects.traits.strings == .pep393
        let str = moveToEndOfPage(objects.str("ab"), size: Int(objects.offset(pep393 ? .asciiObjectSize : .bytesData)) + 3,
                                  in: objects, page: 0x6100_0000_0000)
        let bytes = moveToEndOfPage(objects.bytes([1, 2]), size: Int(objects.offset(.bytesData)) + 3,
                                    in: objects, page: 0x6200_0000_0000)
        let intSize = objects.traits.longs == .python2 ? 24 : Int(objects.offset(.longDigits)) + 4
        let int = moveToEndOfPage(objects.int(5), size: intSize, in: objects, page: 0x6300_0000_0000)
        #expect(try reader.string(str) == "ab")
        #expect(try reader.bytes(bytes) == [1, 2])
        #expect(try reader.integer(int) == 5)
    }

    // MARK: Type names

    @Test func typeNamesComeFromTpNameAndAreCapped() throws {
        let (objects, reader) = try fixture("3.12.1")
        #expect(try reader.typeNameOf(objects.str("x")) == "str")
        #expect(try reader.typeNameOf(objects.int(3)) == "int")
        #expect(try reader.typeName(objects.newType("collections.OrderedDict")) == "collections.OrderedDict")
        let long = String(repeating: "n", count: 1000)
        #expect(try reader.typeName(objects.newType(long)) == String(long.prefix(256)))
        // A name ending right at a page boundary, with the rest of the page unmapped.
        let page: UInt64 = 0x6000_0000_0000
        objects.memory.map(at: page, size: 4096)
        let name = Array("EdgeOfPage".utf8) + [0]
        objects.memory.write(name, at: page + 4096 - UInt64(name.count))
        #expect(try reader.readCString(page + 4096 - UInt64(name.count), limit: 256) == "EdgeOfPage")
        // A name that runs into unmapped memory is an error.
        objects.memory.write(Array("NoEnd".utf8), at: page + 4096 - 5)
        #expect(throws: MemoryReadError.self) { try reader.readCString(page + 4096 - 5, limit: 256) }
    }
}
