import Testing
@testable import PyTap

/// The short reprs of `dump --locals`: Python's own repr rules for floats, str and bytes,
/// ints of any size, checked on values whose Python repr is known.
@Suite struct ValueReprTests {
    @Test(arguments: [
        (0.0, "0.0"), (-0.0, "-0.0"), (2.5, "2.5"), (0.1, "0.1"), (1e22, "1e+22"), (1e16, "1e+16"), (1e15, "1000000000000000.0"),
        (123456789012345678.0, "1.2345678901234568e+17"), (-1.5e-7, "-1.5e-07"), (0.0001, "0.0001"), (0.00001, "1e-05"),
        (1.0 / 3.0, "0.3333333333333333"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
        (Double.infinity, "inf"), (-Double.infinity, "-inf"), (Double.nan, "nan"), (100.0, "100.0"), (12345.678, "12345.678"),
    ] as [(Double, String)])
    func floatsLikePython(value: Double, python: String) {
        #expect(ObjectReader.floatRepr(value) == python)
    }

    @Test func stringsLikePython() {
        #expect(ObjectReader.stringRepr("plain", escapeNonASCII: false) == "'plain'")
        #expect(ObjectReader.stringRepr("it's", escapeNonASCII: false) == "\"it's\"")
        #expect(ObjectReader.stringRepr("both ' and \"", escapeNonASCII: false) == "'both \\' and \"'")
        #expect(ObjectReader.stringRepr("tab\tnl\n\\ \u{7} \u{7f}", escapeNonASCII: false) == "'tab\\tnl\\n\\\\ \\x07 \\x7f'")
        #expect(ObjectReader.stringRepr("café ☃ 🐍", escapeNonASCII: false) == "'café ☃ 🐍'")
        #expect(ObjectReader.stringRepr("\u{a0}\u{200b}\u{2028}", escapeNonASCII: false) == "'\\xa0\\u200b\\u2028'")
        // Python 2's repr(unicode) escapes everything beyond ASCII.
        #expect(ObjectReader.stringRepr("café ☃ 🐍", escapeNonASCII: true) == "'caf\\xe9 \\u2603 \\U0001f40d'")
    }

    @Test func bytesLikePython() {
        #expect(ObjectReader.bytesRepr(Array("abc".utf8)) == "'abc'")
        #expect(ObjectReader.bytesRepr([0, 0x27, 0xff, 0x0a]) == "\"\\x00'\\xff\\n\"")
        #expect(ObjectReader.bytesRepr([0x27, 0x22]) == "'\\'\"'")
    }

    @Test func integersOfAnySize() {
        // 2**100 in 30-bit digits, least significant first.
        let digits: [UInt32] = [0, 0, 0, 1 << 10]
        #expect(ObjectReader.decimal(digits, digitBits: 30) == "1267650600228229401496703205376")
        #expect(ObjectReader.bitLength(digits, digitBits: 30) == 101)
        #expect(ObjectReader.decimal([], digitBits: 30) == "0")
        #expect(ObjectReader.decimal([12345], digitBits: 15) == "12345")
        // 10**18 - 1 = 999999999999999999 spans limbs with zeros inside.
        #expect(ObjectReader.decimal([1_000_000_000 % (1 << 30)], digitBits: 30) == "1000000000")
    }

    @Test(arguments: ["2.7.18", "3.6.15", "3.11.7", "3.12.1", "3.14.0"])
    func objectsInMemory(version: String) throws {
        let objects = try FakeObjects(version: version)
        let reader = ObjectReader(memory: objects.memory, layout: objects.layout)
        #expect(reader.shortRepr(objects.int(42)) == "42")
        #expect(reader.shortRepr(objects.int(-7)) == "-7")
        let big = objects.long(digits: [0, 0, 0, 1 << 10], negative: true)
        #expect(reader.shortRepr(big) == (version.hasPrefix("2.") ? "-1267650600228229401496703205376L" : "-1267650600228229401496703205376"))
        let text = version.hasPrefix("2.") ? objects.unicode27("héllo") : objects.str("héllo")
        #expect(reader.shortRepr(text) == (version.hasPrefix("2.") ? "u'h\\xe9llo'" : "'héllo'"))
        let long = version.hasPrefix("2.") ? objects.unicode27(String(repeating: "x", count: 150)) : objects.str(String(repeating: "x", count: 150))
        #expect(reader.shortRepr(long) == (version.hasPrefix("2.") ? "u" : "") + "'" + String(repeating: "x", count: 100) + "'...")
        let payload = objects.bytes(Array(repeating: 0x79, count: 300))
        #expect(reader.shortRepr(payload) == (version.hasPrefix("2.") ? "" : "b") + "'" + String(repeating: "y", count: 100) + "'...")
        let other = objects.object(type: objects.newType("Widget"), size: 32)
        #expect(reader.shortRepr(other) == "<Widget object at 0x\(String(other, radix: 16))>")
        #expect(reader.shortRepr(objects.dict([(objects.str("a"), objects.int(1))])) == "<dict of 1>")
    }
}
