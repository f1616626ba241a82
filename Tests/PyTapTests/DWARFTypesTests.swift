import Testing
import PyTap

// MARK: - A small DWARF assembler for the tests

/// Assembles .debug_info/.debug_abbrev/.debug_str/.debug_line_str/.debug_str_offsets
/// from a tree of DIEs, so the tests can describe exactly the DWARF they feed the reader.
/// Every DIE gets its own abbreviation; references name DIEs by label and are patched
/// once the whole section is laid out.
final class DWARFAssembler {
    enum Value {
        case data1(UInt8), data2(UInt16), data4(UInt32), data8(UInt64), data16
        case udata(UInt64), sdata(Int64), implicitConst(Int64)
        case flag(Bool), flagPresent
        case string(String), strp(String), lineStrp(String), strx1(String)
        case ref4(String), refUdataToSelf, refAddr(String), refSig8(UInt64)
        case secOffset(UInt64), addr(UInt64), addrx(UInt64), loclistx(UInt64), rnglistx(UInt64)
        case exprloc([UInt8]), block1([UInt8])
        /// Supplementary-file references: offsets into the other file's .debug_info / .debug_str.
        case gnuRefAlt(UInt64), gnuStrpAlt(UInt64)
        /// The DWARF 5 equivalents (DW_FORM_ref_sup4, DW_FORM_strp_sup).
        case refSup4(UInt32), strpSup(UInt64)
        /// DW_FORM_indirect, the real form then written before the value (udata only here).
        case indirectUdata(UInt64)
        /// A form number with no value bytes, to test unknown forms.
        case unknownForm(UInt64)
    }

    struct DIE {
        var tag: UInt64
        var label: String?
        var attributes: [(UInt64, Value)]
        var children: [DIE]

        init(_ tag: UInt64, _ label: String? = nil, _ attributes: [(UInt64, Value)] = [], children: [DIE] = []) {
            self.tag = tag
            self.label = label
            self.attributes = attributes
            self.children = children
        }
    }

    struct Unit {
        var version: Int
        var addressSize = 8
        var is64Bit = false
        /// DWARF 5 unit type: 1 compile, 2 type, 3 partial.
        var unitType: UInt8 = 1
        var typeSignature: UInt64 = 0
        var typeLabel: String?
        /// A DWARF 4 type unit of .debug_types: its header carries the signature and type offset.
        var inTypesSection = false
        var root: DIE
    }

    private(set) var info: [UInt8] = []
    private(set) var abbrev: [UInt8] = []
    private(set) var str: [UInt8] = []
    private(set) var lineStr: [UInt8] = []
    private var stringOffsets: [String: Int] = [:]
    private var lineStringOffsets: [String: Int] = [:]
    private var indexedStrings: [String] = []
    private var labels: [String: Int] = [:]
    private var fixups: [(position: Int, size: Int, label: String, base: Int)] = []

    /// Where a str_offsets_base attribute must point: just past the table's 8-byte header.
    static let strOffsetsBase: UInt64 = 8

    init() {}

    /// An assembler for another section (e.g. .debug_types) that shares `other`'s
    /// .debug_abbrev and .debug_str: take `abbrev` and `str` from the one built last.
    init(continuing other: DWARFAssembler) {
        abbrev = other.abbrev
        str = other.str
        stringOffsets = other.stringOffsets
    }

    func add(_ unit: Unit) {
        let offsetSize = unit.is64Bit ? 8 : 4
        let start = info.count
        if unit.is64Bit {
            append(0xffff_ffff, 4)
            append(0, 8)
        } else {
            append(0, 4)
        }
        let lengthEnd = info.count
        append(UInt64(unit.version), 2)
        let abbrevOffset = UInt64(abbrev.count)
        if unit.version >= 5 {
            append(UInt64(unit.unitType), 1)
            append(UInt64(unit.addressSize), 1)
            append(abbrevOffset, offsetSize)
            if unit.unitType == 2 {
                append(unit.typeSignature, 8)
                if let label = unit.typeLabel { fixups.append((info.count, offsetSize, label, start)) }
                append(0, offsetSize)
            }
        } else {
            append(abbrevOffset, offsetSize)
            append(UInt64(unit.addressSize), 1)
            if unit.inTypesSection {
                append(unit.typeSignature, 8)
                if let label = unit.typeLabel { fixups.append((info.count, offsetSize, label, start)) }
                append(0, offsetSize)
            }
        }
        var code: UInt64 = 0
        emit(unit.root, unit: unit, unitStart: start, offsetSize: offsetSize, code: &code)
        abbrev.append(0)
        let length = UInt64(info.count - lengthEnd)
        if unit.is64Bit { patch(start + 4, length, 8) } else { patch(start, length, 4) }
    }

    /// Offset of a labelled DIE in .debug_info.
    func offset(of label: String) -> UInt64 { UInt64(labels[label] ?? -1) }

    /// Offset of a string in .debug_str (added if new).
    func strOffset(_ text: String) -> UInt64 { UInt64(stringOffset(text)) }

    /// .debug_info (or .debug_types) with references patched.
    var patchedInfo: [UInt8] {
        var patched = info
        for fixup in fixups {
            let value = UInt64((labels[fixup.label] ?? 0) - fixup.base)
            for byte in 0..<fixup.size { patched[fixup.position + byte] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(byte))) }
        }
        return patched
    }

    var sections: DWARFSections {
        let patched = patchedInfo
        var offsets: [UInt8] = []
        if !indexedStrings.isEmpty {
            let entries = indexedStrings.map { UInt64(stringOffsets[$0] ?? 0) }
            Self.append(UInt64(4 + 4 * entries.count), 4, to: &offsets)
            Self.append(5, 2, to: &offsets)
            Self.append(0, 2, to: &offsets)
            for entry in entries { Self.append(entry, 4, to: &offsets) }
        }
        return DWARFSections(info: patched, abbrev: abbrev, str: str, lineStr: lineStr, strOffsets: offsets)
    }

    // MARK: Emitting

    private func emit(_ die: DIE, unit: Unit, unitStart: Int, offsetSize: Int, code: inout UInt64) {
        code += 1
        if let label = die.label { labels[label] = info.count }
        let dieStart = info.count
        uleb(code, into: &abbrev)
        uleb(die.tag, into: &abbrev)
        abbrev.append(die.children.isEmpty ? 0 : 1)
        uleb(code, into: &info)
        for (attribute, value) in die.attributes {
            uleb(attribute, into: &abbrev)
            let form = encode(value, unit: unit, unitStart: unitStart, dieStart: dieStart, offsetSize: offsetSize)
            uleb(form, into: &abbrev)
            if case .implicitConst(let constant) = value { sleb(constant, into: &abbrev) }
        }
        abbrev.append(contentsOf: [0, 0])
        if !die.children.isEmpty {
            for child in die.children { emit(child, unit: unit, unitStart: unitStart, offsetSize: offsetSize, code: &code) }
            info.append(0)
        }
    }

    /// Writes the value into .debug_info and returns its form.
    private func encode(_ value: Value, unit: Unit, unitStart: Int, dieStart: Int, offsetSize: Int) -> UInt64 {
        switch value {
        case .data1(let v): append(UInt64(v), 1); return 0x0b
        case .data2(let v): append(UInt64(v), 2); return 0x05
        case .data4(let v): append(UInt64(v), 4); return 0x06
        case .data8(let v): append(v, 8); return 0x07
        case .data16: info.append(contentsOf: [UInt8](repeating: 0xab, count: 16)); return 0x1e
        case .udata(let v): uleb(v, into: &info); return 0x0f
        case .sdata(let v): sleb(v, into: &info); return 0x0d
        case .implicitConst: return 0x21
        case .flag(let v): info.append(v ? 1 : 0); return 0x0c
        case .flagPresent: return 0x19
        case .string(let text): info.append(contentsOf: Array(text.utf8) + [0]); return 0x08
        case .strp(let text): append(UInt64(stringOffset(text)), offsetSize); return 0x0e
        case .lineStrp(let text):
            let offset = lineStringOffsets[text] ?? {
                let offset = lineStr.count
                lineStr.append(contentsOf: Array(text.utf8) + [0])
                lineStringOffsets[text] = offset
                return offset
            }()
            append(UInt64(offset), offsetSize)
            return 0x1f
        case .strx1(let text):
            _ = stringOffset(text)
            let index = indexedStrings.firstIndex(of: text) ?? {
                indexedStrings.append(text)
                return indexedStrings.count - 1
            }()
            info.append(UInt8(index))
            return 0x25
        case .ref4(let label): fixups.append((info.count, 4, label, unitStart)); append(0, 4); return 0x13
        case .refUdataToSelf: uleb(UInt64(dieStart - unitStart), into: &info); return 0x15
        case .refAddr(let label):
            let size = unit.version <= 2 ? unit.addressSize : offsetSize
            fixups.append((info.count, size, label, 0))
            append(0, size)
            return 0x10
        case .refSig8(let signature): append(signature, 8); return 0x20
        case .secOffset(let v): append(v, offsetSize); return 0x17
        case .addr(let v): append(v, unit.addressSize); return 0x01
        case .addrx(let v): uleb(v, into: &info); return 0x1b
        case .loclistx(let v): uleb(v, into: &info); return 0x22
        case .rnglistx(let v): uleb(v, into: &info); return 0x23
        case .exprloc(let bytes): uleb(UInt64(bytes.count), into: &info); info.append(contentsOf: bytes); return 0x18
        case .block1(let bytes): info.append(UInt8(bytes.count)); info.append(contentsOf: bytes); return 0x0a
        case .gnuRefAlt(let offset): append(offset, offsetSize); return 0x1f20
        case .gnuStrpAlt(let offset): append(offset, offsetSize); return 0x1f21
        case .refSup4(let offset): append(UInt64(offset), 4); return 0x1c
        case .strpSup(let offset): append(offset, offsetSize); return 0x1d
        case .indirectUdata(let v): uleb(0x0f, into: &info); uleb(v, into: &info); return 0x16
        case .unknownForm(let form): return form
        }
    }

    private func stringOffset(_ text: String) -> Int {
        if let offset = stringOffsets[text] { return offset }
        let offset = str.count
        str.append(contentsOf: Array(text.utf8) + [0])
        stringOffsets[text] = offset
        return offset
    }

    private func append(_ value: UInt64, _ size: Int) { Self.append(value, size, to: &info) }

    private static func append(_ value: UInt64, _ size: Int, to bytes: inout [UInt8]) {
        for byte in 0..<size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(byte)))) }
    }

    private func patch(_ position: Int, _ value: UInt64, _ size: Int) {
        for byte in 0..<size { info[position + byte] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(byte))) }
    }

    private func uleb(_ value: UInt64, into bytes: inout [UInt8]) {
        bytes += LEB.unsigned(value)
    }

    private func sleb(_ value: Int64, into bytes: inout [UInt8]) {
        bytes += LEB.signed(value)
    }
}

// DWARF numbers used below.
private enum T {
    static let arrayType: UInt64 = 0x01, enumerationType: UInt64 = 0x04, member: UInt64 = 0x0d
    static let pointerType: UInt64 = 0x0f, compileUnit: UInt64 = 0x11, structureType: UInt64 = 0x13
    static let typedef: UInt64 = 0x16, unionType: UInt64 = 0x17, subrangeType: UInt64 = 0x21
    static let baseType: UInt64 = 0x24, constType: UInt64 = 0x26, enumerator: UInt64 = 0x28
    static let subprogram: UInt64 = 0x2e, variable: UInt64 = 0x34, volatileType: UInt64 = 0x35
    static let partialUnit: UInt64 = 0x3c, typeUnit: UInt64 = 0x41, lexicalBlock: UInt64 = 0x0b
}

private enum A {
    static let sibling: UInt64 = 0x01, location: UInt64 = 0x02, name: UInt64 = 0x03, byteSize: UInt64 = 0x0b
    static let bitOffset: UInt64 = 0x0c, bitSize: UInt64 = 0x0d, lowPC: UInt64 = 0x11, language: UInt64 = 0x13
    static let constValue: UInt64 = 0x1c, upperBound: UInt64 = 0x2f, count: UInt64 = 0x37
    static let dataMemberLocation: UInt64 = 0x38, declFile: UInt64 = 0x3a, declLine: UInt64 = 0x3b
    static let declaration: UInt64 = 0x3c, encoding: UInt64 = 0x3e, external: UInt64 = 0x3f, type: UInt64 = 0x49
    static let ranges: UInt64 = 0x55, signature: UInt64 = 0x69, dataBitOffset: UInt64 = 0x6b
    static let strOffsetsBase: UInt64 = 0x72, producer: UInt64 = 0x25
}

private typealias DIE = DWARFAssembler.DIE

private func baseType(_ label: String, _ name: String, size: UInt8, encoding: UInt8) -> DIE {
    DIE(T.baseType, label, [(A.byteSize, .data1(size)), (A.encoding, .data1(encoding)), (A.name, .strp(name))])
}

private func member(_ name: String, _ type: String, at offset: UInt8? = nil) -> DIE {
    var attributes: [(UInt64, DWARFAssembler.Value)] = [(A.name, .strp(name)), (A.type, .ref4(type))]
    if let offset { attributes.append((A.dataMemberLocation, .data1(offset))) }
    return DIE(T.member, nil, attributes)
}

private func expectError(_ expected: DWARFError, _ body: () throws -> Int, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let value = try body()
        Issue.record("expected \(expected), got \(value)", sourceLocation: sourceLocation)
    } catch let error as DWARFError {
        #expect(error == expected, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(expected), got \(error)", sourceLocation: sourceLocation)
    }
}

// MARK: - Tests

struct DWARFTypesTests {
    /// A DWARF 4 unit as GCC writes it: typedef to a struct with a nested struct member, an
    /// anonymous union member, bitfields with DW_AT_data_bit_offset, an enum, a function whose
    /// subtree (skipped by DW_AT_sibling) holds a local typedef that must not shadow the real
    /// one, a const-qualified typedef, and an opaque typedef completed from a second unit.
    static func dwarf4() -> DWARFSections {
        let dwarf = DWARFAssembler()
        dwarf.add(.init(version: 4, root: DIE(T.compileUnit, nil, [
            (A.producer, .strp("GNU C99 test")), (A.language, .data1(0x0c)), (A.name, .string("a.c")),
        ], children: [
            baseType("int", "int", size: 4, encoding: 5),
            baseType("long", "long int", size: 8, encoding: 5),
            baseType("char", "char", size: 1, encoding: 6),
            baseType("uint", "unsigned int", size: 4, encoding: 7),
            // A function first: its local "Outer" typedef is inside a skipped subtree.
            DIE(T.subprogram, nil, [(A.external, .flagPresent), (A.name, .strp("f")), (A.lowPC, .addr(0x1000)),
                                    (A.sibling, .ref4("afterFunction"))], children: [
                DIE(T.typedef, nil, [(A.name, .strp("Outer")), (A.type, .ref4("int"))]),
                DIE(T.variable, nil, [(A.name, .string("local")), (A.type, .ref4("int")), (A.location, .exprloc([0x91, 0x70]))]),
                DIE(T.lexicalBlock, nil, [(A.lowPC, .addr(0x1010))], children: [
                    DIE(T.variable, nil, [(A.name, .string("inner")), (A.type, .ref4("long"))]),
                ]),
            ]),
            DIE(T.structureType, "afterFunction", [(A.name, .strp("_inner")), (A.byteSize, .data1(16)),
                                                   (A.sibling, .ref4("anonUnion"))], children: [
                member("a", "int", at: 0),
                member("b", "long", at: 8),
            ]),
            DIE(T.unionType, "anonUnion", [(A.byteSize, .data1(8))], children: [
                member("u1", "long"),
                member("u2", "char"),
            ]),
            DIE(T.structureType, "outer", [(A.name, .strp("_outer")), (A.byteSize, .data1(40)),
                                           (A.declFile, .data1(1)), (A.declLine, .data2(300)),
                                           (A.sibling, .ref4("outerTypedef"))], children: [
                member("x", "int", at: 0),
                member("inner", "afterFunction", at: 8),
                DIE(T.member, nil, [(A.type, .ref4("anonUnion")), (A.dataMemberLocation, .data1(24))]),
                DIE(T.member, nil, [(A.name, .strp("kind")), (A.type, .ref4("uint")), (A.bitSize, .data1(3)),
                                    (A.dataBitOffset, .data2(258))]),
                DIE(T.member, nil, [(A.name, .strp("ready")), (A.type, .ref4("uint")), (A.bitSize, .data1(1)),
                                    (A.dataBitOffset, .data2(261))]),
                DIE(T.member, nil, [(A.name, .strp("tail")), (A.type, .ref4("long")), (A.dataMemberLocation, .udata(32))]),
            ]),
            DIE(T.typedef, "outerTypedef", [(A.name, .strp("Outer")), (A.type, .ref4("outer"))]),
            DIE(T.constType, "constOuter", [(A.type, .ref4("outerTypedef"))]),
            DIE(T.volatileType, "volatileConstOuter", [(A.type, .ref4("constOuter"))]),
            DIE(T.typedef, nil, [(A.name, .strp("QualifiedOuter")), (A.type, .ref4("volatileConstOuter"))]),
            DIE(T.enumerationType, nil, [(A.name, .strp("color")), (A.byteSize, .data1(4)), (A.type, .ref4("int"))], children: [
                DIE(T.enumerator, nil, [(A.name, .strp("RED")), (A.constValue, .data1(0))]),
                DIE(T.enumerator, nil, [(A.name, .strp("GREEN")), (A.constValue, .data1(1))]),
                DIE(T.enumerator, nil, [(A.name, .strp("BLUE")), (A.constValue, .sdata(-3))]),
                DIE(T.enumerator, nil, [(A.name, .strp("NEGATIVE_TWO")), (A.constValue, .data1(0xfe))]),
            ]),
            DIE(T.enumerationType, nil, [(A.name, .strp("flags")), (A.byteSize, .data1(1)), (A.type, .ref4("uint"))], children: [
                DIE(T.enumerator, nil, [(A.name, .strp("ALL_BITS")), (A.constValue, .data1(0xff))]),
            ]),
            // An opaque struct, as most units see PyInterpreterState.
            DIE(T.structureType, "opaque", [(A.name, .strp("_opaque")), (A.declaration, .flagPresent)]),
            DIE(T.typedef, nil, [(A.name, .strp("Opaque")), (A.type, .ref4("opaque"))]),
            DIE(T.pointerType, "charPointer", [(A.byteSize, .data1(8)), (A.type, .ref4("char"))]),
            DIE(T.arrayType, "array", [(A.type, .ref4("long"))], children: [
                DIE(T.subrangeType, nil, [(A.type, .ref4("uint")), (A.upperBound, .data1(2))]),
                DIE(T.subrangeType, nil, [(A.type, .ref4("uint")), (A.count, .data1(4))]),
            ]),
            DIE(T.typedef, nil, [(A.name, .strp("LongGrid")), (A.type, .ref4("array"))]),
        ])))
        // A second unit holds the full definition of the opaque struct.
        dwarf.add(.init(version: 4, root: DIE(T.compileUnit, nil, [(A.language, .data1(0x0c))], children: [
            baseType("int2", "int", size: 4, encoding: 5),
            DIE(T.structureType, "definition", [(A.name, .strp("_opaque")), (A.byteSize, .data1(12))], children: [
                member("first", "int2", at: 0),
                member("secret", "int2", at: 4),
                member("last", "int2", at: 8),
            ]),
        ])))
        return dwarf.sections
    }

    @Test func dwarf4MembersSizesAndEnums() throws {
        let types = try DWARFTypes(sections: Self.dwarf4())
        #expect(try types.resolve("Outer.x") == 0)
        #expect(try types.resolve("Outer.inner") == 8)
        #expect(try types.resolve("Outer.inner.b") == 16)
        #expect(try types.resolve("struct _outer.inner.a") == 8)
        #expect(try types.resolve("struct _inner.b") == 8)
        #expect(try types.resolve("Outer.tail") == 32)
        // Through the anonymous union member.
        #expect(try types.resolve("Outer.u1") == 24)
        #expect(try types.resolve("Outer.u2") == 24)
        // Through const and volatile.
        #expect(try types.resolve("QualifiedOuter.inner.b") == 16)
        #expect(try types.resolve("sizeof(Outer)") == 40)
        #expect(try types.resolve("sizeof(QualifiedOuter)") == 40)
        #expect(try types.resolve("sizeof(struct _inner)") == 16)
        #expect(try types.resolve("sizeof(int)") == 4)
        #expect(try types.resolve("sizeof(unsigned int)") == 4)
        #expect(try types.resolve("sizeof(LongGrid)") == 8 * 3 * 4)
        #expect(try types.resolve("sizeof(enum color)") == 4)
        #expect(try types.resolve("enum(RED)") == 0)
        #expect(try types.resolve("enum(GREEN)") == 1)
        #expect(try types.resolve("enum(BLUE)") == -3)
        // data1 0xfe in an enum over a signed int is -2; 0xff over unsigned int stays 255.
        #expect(try types.resolve("enum(NEGATIVE_TWO)") == -2)
        #expect(try types.resolve("enum(ALL_BITS)") == 255)
        // The opaque typedef is completed from the other unit.
        #expect(try types.resolve("Opaque.secret") == 4)
        #expect(try types.resolve("sizeof(Opaque)") == 12)
        #expect(try types.indexedNameCount() > 10)
    }

    @Test func dwarf4Bitfields() throws {
        let types = try DWARFTypes(sections: Self.dwarf4())
        // data_bit_offset 258 of an unsigned int: storage unit at byte 32, bit 258 from the start.
        #expect(try types.resolve("Outer.kind") == 32)
        #expect(try types.bitOffset("Outer.kind") == 258)
        #expect(try types.bitOffset("Outer.ready") == 261)
        #expect(try types.bitOffset("Outer.inner.b") == 128)
        #expect(try types.bitOffset("Outer.x") == 0)
    }

    @Test func errorsAreDescriptive() throws {
        let types = try DWARFTypes(sections: Self.dwarf4())
        expectError(.memberNotFound(type: "Outer", member: "nope")) { try types.resolve("Outer.nope") }
        expectError(.memberNotFound(type: "Outer.inner", member: "zz")) { try types.resolve("Outer.inner.zz") }
        expectError(.typeNotFound("Nope")) { try types.resolve("Nope.x") }
        expectError(.typeNotFound("struct Outer")) { try types.resolve("struct Outer.x") }
        expectError(.notAStructure(type: "Outer.x", member: "y")) { try types.resolve("Outer.x.y") }
        expectError(.enumeratorNotFound("PURPLE")) { try types.resolve("enum(PURPLE)") }
        expectError(.badPath("Outer")) { try types.resolve("Outer") }
        expectError(.badPath("Outer..x")) { try types.resolve("Outer..x") }
        expectError(.badPath("sizeof()")) { try types.resolve("sizeof()") }
        expectError(.badPath("enum(A B)")) { try types.resolve("enum(A B)") }
        expectError(.badPath("sizeof(Outer)")) { try types.bitOffset("sizeof(Outer)") }
        #expect(DWARFError.memberNotFound(type: "Outer", member: "nope").description.contains("nope"))
    }

    /// DWARF 5 as GCC 11+ and Clang write it: unit_type in the header, strx1 names with
    /// DW_AT_str_offsets_base, line_strp, implicit_const, data16, DW_FORM_indirect, index
    /// forms (addrx, loclistx, rnglistx) to skip, and a type unit reached by DW_FORM_ref_sig8
    /// and by a declaration's DW_AT_signature.
    static func dwarf5() -> DWARFSections {
        let dwarf = DWARFAssembler()
        dwarf.add(.init(version: 5, unitType: 2, typeSignature: 0x1234_5678_9abc_def0, typeLabel: "tuStruct",
                        root: DIE(T.typeUnit, nil, [(A.language, .data1(0x1d)), (A.strOffsetsBase, .secOffset(DWARFAssembler.strOffsetsBase))], children: [
            DIE(T.baseType, "tuLong", [(A.byteSize, .data1(8)), (A.encoding, .data1(5)), (A.name, .strx1("long int"))]),
            DIE(T.structureType, "tuStruct", [(A.name, .strx1("_from_type_unit")), (A.byteSize, .data1(24))], children: [
                DIE(T.member, nil, [(A.name, .strx1("p")), (A.type, .ref4("tuLong")), (A.dataMemberLocation, .data1(0))]),
                DIE(T.member, nil, [(A.name, .strx1("q")), (A.type, .ref4("tuLong")), (A.dataMemberLocation, .data1(16))]),
            ]),
        ])))
        dwarf.add(.init(version: 5, root: DIE(T.compileUnit, nil, [
            (A.producer, .strx1("clang")), (A.language, .data1(0x1d)), (A.name, .lineStrp("b.c")),
            (A.strOffsetsBase, .secOffset(DWARFAssembler.strOffsetsBase)),
        ], children: [
            DIE(T.baseType, "int", [(A.name, .strx1("int")), (A.byteSize, .data1(4)), (A.encoding, .data1(5))]),
            DIE(T.baseType, "schar", [(A.name, .strx1("signed char")), (A.byteSize, .data1(1)), (A.encoding, .data1(6))]),
            DIE(T.baseType, "uchar", [(A.name, .strx1("unsigned char")), (A.byteSize, .data1(1)), (A.encoding, .data1(8))]),
            DIE(T.variable, nil, [(A.name, .strx1("big")), (A.type, .ref4("int")), (A.constValue, .data16),
                                  (A.location, .exprloc([0xa1, 0x00]))]),
            // No DW_AT_sibling (Clang style): the subtree is walked.
            DIE(T.subprogram, nil, [(A.name, .strx1("g")), (A.lowPC, .addrx(0)), (A.ranges, .rnglistx(1))], children: [
                DIE(T.variable, nil, [(A.name, .strx1("v")), (A.type, .ref4("int")), (A.location, .loclistx(0))]),
                DIE(T.structureType, nil, [(A.name, .strx1("LocalOnly")), (A.byteSize, .data1(4))]),
            ]),
            DIE(T.structureType, "state", [(A.name, .strx1("_state")), (A.byteSize, .data1(64)),
                                           (A.declFile, .implicitConst(1)), (A.declLine, .data1(10))], children: [
                DIE(T.member, nil, [(A.name, .strx1("head")), (A.declFile, .implicitConst(1)),
                                    (A.type, .ref4("int")), (A.dataMemberLocation, .data2(0))]),
                DIE(T.member, nil, [(A.name, .string("inline_name")), (A.declFile, .implicitConst(1)),
                                    (A.type, .ref4("int")), (A.dataMemberLocation, .indirectUdata(4))]),
                DIE(T.member, nil, [(A.name, .strx1("typed")), (A.type, .refSig8(0x1234_5678_9abc_def0)),
                                    (A.dataMemberLocation, .data1(8))]),
                DIE(T.member, nil, [(A.name, .strx1("self")), (A.type, .refUdataToSelf),
                                    (A.dataMemberLocation, .data1(32))]),
            ]),
            DIE(T.typedef, nil, [(A.name, .strx1("State")), (A.type, .ref4("state"))]),
            DIE(T.structureType, "declared", [(A.name, .strx1("_from_type_unit")), (A.declaration, .flagPresent),
                                              (A.signature, .refSig8(0x1234_5678_9abc_def0))]),
            DIE(T.typedef, nil, [(A.name, .strx1("FromTypeUnit")), (A.type, .ref4("declared"))]),
            DIE(T.enumerationType, nil, [(A.name, .strx1("small")), (A.type, .ref4("schar")), (A.byteSize, .data1(1))], children: [
                DIE(T.enumerator, nil, [(A.name, .strx1("SMALL_MINUS_ONE")), (A.constValue, .data1(0xff))]),
                DIE(T.enumerator, nil, [(A.name, .strx1("SMALL_SEVEN")), (A.constValue, .implicitConst(7))]),
            ]),
            DIE(T.enumerationType, nil, [(A.name, .strx1("usmall")), (A.type, .ref4("uchar")), (A.byteSize, .data1(1))], children: [
                DIE(T.enumerator, nil, [(A.name, .strx1("USMALL_MAX")), (A.constValue, .data1(0xff))]),
            ]),
        ])))
        return dwarf.sections
    }

    @Test func dwarf5Forms() throws {
        let types = try DWARFTypes(sections: Self.dwarf5())
        #expect(types.unitCount == 2)
        #expect(try types.resolve("State.head") == 0)
        #expect(try types.resolve("State.inline_name") == 4)
        #expect(try types.resolve("State.typed") == 8)
        // Into the type unit through DW_FORM_ref_sig8.
        #expect(try types.resolve("State.typed.q") == 24)
        #expect(try types.resolve("struct _state.self") == 32)
        #expect(try types.resolve("sizeof(State)") == 64)
        // A declaration completed through DW_AT_signature, and the type unit's own name.
        #expect(try types.resolve("FromTypeUnit.q") == 16)
        #expect(try types.resolve("sizeof(struct _from_type_unit)") == 24)
        #expect(try types.resolve("enum(SMALL_MINUS_ONE)") == -1)
        #expect(try types.resolve("enum(SMALL_SEVEN)") == 7)
        #expect(try types.resolve("enum(USMALL_MAX)") == 255)
        #expect(try types.resolve("sizeof(enum usmall)") == 1)
        // Types local to a function are not indexed.
        expectError(.typeNotFound("LocalOnly")) { try types.resolve("sizeof(LocalOnly)") }
    }

    /// DWARF 2 (32-bit target): member locations as `DW_OP_plus_uconst` blocks, ref_addr sized
    /// like an address, and bitfields described by DW_AT_bit_offset from the most significant bit.
    /// Plus a DWARF 3 unit in the 64-bit DWARF format.
    static func dwarf2And3() -> DWARFSections {
        let dwarf = DWARFAssembler()
        dwarf.add(.init(version: 2, addressSize: 4, root: DIE(T.compileUnit, nil, [(A.language, .data1(0x01)), (A.name, .string("old.c"))], children: [
            baseType("uint", "unsigned int", size: 4, encoding: 7),
            // A declaration (DW_FORM_flag) ahead of the definition: skipped by the index.
            DIE(T.structureType, "oldDeclaration", [(A.name, .strp("_old")), (A.declaration, .flag(true))]),
            DIE(T.typedef, nil, [(A.name, .strp("OldDeclared")), (A.type, .ref4("oldDeclaration"))]),
            DIE(T.structureType, "old", [(A.name, .strp("_old")), (A.byteSize, .data1(12))], children: [
                DIE(T.member, nil, [(A.name, .strp("first")), (A.type, .refAddr("uint")),
                                    (A.dataMemberLocation, .block1([0x23, 0x00]))]),
                // unsigned a:3, b:5 in the unit at byte 4: bit_offset counts from the top.
                DIE(T.member, nil, [(A.name, .strp("a")), (A.type, .ref4("uint")), (A.byteSize, .data1(4)),
                                    (A.bitSize, .data1(3)), (A.bitOffset, .data1(29)),
                                    (A.dataMemberLocation, .block1([0x23, 0x04]))]),
                DIE(T.member, nil, [(A.name, .strp("b")), (A.type, .ref4("uint")), (A.byteSize, .data1(4)),
                                    (A.bitSize, .data1(5)), (A.bitOffset, .data1(24)),
                                    (A.dataMemberLocation, .block1([0x23, 0x04]))]),
                DIE(T.member, nil, [(A.name, .strp("far")), (A.type, .ref4("uint")),
                                    (A.dataMemberLocation, .block1([0x23, 0x88, 0x01]))]), // plus_uconst 136
                DIE(T.member, nil, [(A.name, .strp("summed")), (A.type, .ref4("uint")),
                                    (A.dataMemberLocation, .block1([0x10, 0x06, 0x32, 0x22, 0x22]))]), // constu 6, lit2, plus, plus
            ]),
            DIE(T.typedef, nil, [(A.name, .strp("Old")), (A.type, .ref4("old"))]),
        ])))
        dwarf.add(.init(version: 3, is64Bit: true, root: DIE(T.compileUnit, nil, [(A.language, .data1(0x0c))], children: [
            baseType("long64", "long int", size: 8, encoding: 5),
            DIE(T.structureType, "wide", [(A.name, .strp("_wide")), (A.byteSize, .data1(16))], children: [
                DIE(T.member, nil, [(A.name, .strp("lo")), (A.type, .refAddr("long64")), (A.dataMemberLocation, .block1([0x23, 0x00]))]),
                DIE(T.member, nil, [(A.name, .strp("hi")), (A.type, .ref4("long64")), (A.dataMemberLocation, .data1(8))]),
            ]),
            DIE(T.typedef, nil, [(A.name, .strp("Wide")), (A.type, .ref4("wide"))]),
        ])))
        return dwarf.sections
    }

    @Test func dwarf2PlusUconstAndBitOffsets() throws {
        let types = try DWARFTypes(sections: Self.dwarf2And3())
        #expect(try types.resolve("Old.first") == 0)
        #expect(try types.resolve("Old.a") == 4)
        #expect(try types.bitOffset("Old.a") == 32)
        #expect(try types.bitOffset("Old.b") == 35)
        #expect(try types.resolve("Old.far") == 136)
        #expect(try types.resolve("Old.summed") == 8)
        #expect(try types.resolve("sizeof(Old)") == 12)
        #expect(try types.resolve("sizeof(struct _old)") == 12)
        #expect(try types.resolve("OldDeclared.far") == 136)
        // The 64-bit DWARF 3 unit.
        #expect(try types.resolve("Wide.hi") == 8)
        #expect(try types.resolve("Wide.lo") == 0)
        #expect(try types.resolve("sizeof(long int)") == 8)
    }

    /// dwz: shared types live in a supplementary file, reached by DW_FORM_GNU_ref_alt and
    /// named by DW_FORM_GNU_strp_alt.
    @Test func supplementaryFile() throws {
        let shared = DWARFAssembler()
        shared.add(.init(version: 4, root: DIE(T.partialUnit, nil, [], children: [
            baseType("int", "int", size: 4, encoding: 5),
            baseType("long", "long int", size: 8, encoding: 5),
            DIE(T.structureType, "shared", [(A.name, .strp("_shared")), (A.byteSize, .data1(16))], children: [
                member("a", "int", at: 0),
                member("b", "long", at: 8),
            ]),
        ])))
        let supplementary = shared.sections
        let main = DWARFAssembler()
        main.add(.init(version: 4, root: DIE(T.compileUnit, nil, [(A.language, .data1(0x0c))], children: [
            DIE(T.typedef, nil, [(A.name, .strp("Shared")), (A.type, .gnuRefAlt(shared.offset(of: "shared")))]),
            DIE(T.typedef, nil, [(A.name, .gnuStrpAlt(shared.strOffset("_shared"))), (A.type, .gnuRefAlt(shared.offset(of: "shared")))]),
            DIE(T.structureType, "local", [(A.name, .strp("_local")), (A.byteSize, .data1(24))], children: [
                DIE(T.member, nil, [(A.name, .strp("s")), (A.type, .gnuRefAlt(shared.offset(of: "shared"))), (A.dataMemberLocation, .data1(8))]),
            ]),
        ])))
        main.add(.init(version: 5, root: DIE(T.compileUnit, nil, [(A.language, .data1(0x1d))], children: [
            DIE(T.typedef, nil, [(A.name, .strpSup(shared.strOffset("long int"))), (A.type, .refSup4(UInt32(shared.offset(of: "long"))))]),
            DIE(T.typedef, nil, [(A.name, .strp("SharedToo")), (A.type, .refSup4(UInt32(shared.offset(of: "shared"))))]),
        ])))
        let types = try DWARFTypes(sections: main.sections, supplementary: supplementary)
        #expect(types.unitCount == 3)
        #expect(try types.resolve("Shared.b") == 8)
        #expect(try types.resolve("SharedToo.b") == 8)
        #expect(try types.resolve("struct _shared.b") == 8)
        #expect(try types.resolve("struct _local.s.b") == 16)
        // A typedef named through GNU_strp_alt.
        #expect(try types.resolve("_shared.a") == 0)

        // Without the supplementary file the references cannot be followed: a clear error, no crash.
        let alone = try DWARFTypes(sections: main.sections)
        do {
            _ = try alone.resolve("Shared.b")
            Issue.record("resolved a reference into a missing supplementary file")
        } catch let error as DWARFError {
            guard case .supplementaryFileMissing = error else {
                Issue.record("unexpected error \(error)")
                return
            }
        }
    }

    @Test func unknownFormIsAnErrorNotACrash() throws {
        let dwarf = DWARFAssembler()
        dwarf.add(.init(version: 4, root: DIE(T.compileUnit, nil, [(A.language, .data1(0x0c))], children: [
            baseType("int", "int", size: 4, encoding: 5),
            DIE(T.variable, nil, [(A.name, .strp("v")), (0x2001, .unknownForm(0x7f))]),
            DIE(T.typedef, nil, [(A.name, .strp("I")), (A.type, .ref4("int"))]),
        ])))
        let types = try DWARFTypes(sections: dwarf.sections)
        do {
            _ = try types.resolve("sizeof(I)")
            Issue.record("skipped an attribute of unknown form")
        } catch let error as DWARFError {
            // Header 11 bytes, root DIE 2, base type 7, then the variable's code and strp name.
            #expect(error == .unsupportedForm(form: 0x7f, section: ".debug_info", offset: 0x19))
        }
    }

    /// Truncated and randomly corrupted sections must make the reader throw, never trap.
    @Test(arguments: [
        ("DWARF 4", DWARFTypesTests.dwarf4(), ["Outer.inner.b", "sizeof(Outer)", "enum(BLUE)", "Opaque.secret", "Outer.u2", "sizeof(LongGrid)"]),
        ("DWARF 5", DWARFTypesTests.dwarf5(), ["State.typed.q", "FromTypeUnit.q", "enum(SMALL_MINUS_ONE)", "sizeof(State)"]),
        ("DWARF 2/3", DWARFTypesTests.dwarf2And3(), ["Old.b", "Old.summed", "Wide.hi", "sizeof(Old)"]),
    ])
    func malformedInputThrows(_ name: String, _ sections: DWARFSections, _ paths: [String]) throws {
        func exercise(_ sections: DWARFSections) {
            guard let types = try? DWARFTypes(sections: sections) else { return }
            for path in paths {
                _ = try? types.resolve(path)
                _ = try? types.bitOffset(path)
            }
        }
        // The intact sections answer every path.
        let intact = try DWARFTypes(sections: sections)
        for path in paths { _ = try intact.resolve(path) }
        for length in 0..<sections.info.count {
            var truncated = sections
            truncated.info = Array(sections.info.prefix(length))
            exercise(truncated)
        }
        for length in 0..<sections.abbrev.count {
            var truncated = sections
            truncated.abbrev = Array(sections.abbrev.prefix(length))
            exercise(truncated)
        }
        // Deterministic pseudo-random corruption (xorshift), a few bytes at a time.
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        func corrupt(_ bytes: inout [UInt8]) {
            guard !bytes.isEmpty else { return }
            let position = Int(next() % UInt64(bytes.count))
            // Mostly small values and 0xff: they hit lengths, codes, forms and offsets hardest.
            let choices: [UInt8] = [0, 1, 0x7f, 0x80, 0xff, UInt8(truncatingIfNeeded: next())]
            bytes[position] = choices[Int(next() % UInt64(choices.count))]
        }
        for round in 0..<2000 {
            var corrupted = sections
            for _ in 0..<(1 + Int(next() % 4)) {
                switch round % 4 {
                case 0, 1: corrupt(&corrupted.info)
                case 2: corrupt(&corrupted.abbrev)
                default:
                    corrupt(&corrupted.str)
                    corrupt(&corrupted.strOffsets)
                }
            }
            exercise(corrupted)
        }
        expectError(.missingSection(".debug_info")) { _ = try DWARFTypes(sections: DWARFSections(info: [], abbrev: [])); return 0 }
    }

    /// DWARF 4 with -fdebug-types-section: a struct lives in a type unit of .debug_types,
    /// referenced from .debug_info by DW_FORM_ref_sig8.
    @Test func dwarf4TypesSection() throws {
        let main = DWARFAssembler()
        main.add(.init(version: 4, root: DIE(T.compileUnit, nil, [(A.language, .data1(0x0c))], children: [
            baseType("int", "int", size: 4, encoding: 5),
            DIE(T.structureType, "holder", [(A.name, .strp("_holder")), (A.byteSize, .data1(40))], children: [
                member("n", "int", at: 0),
                DIE(T.member, nil, [(A.name, .strp("body")), (A.type, .refSig8(0xfeed)), (A.dataMemberLocation, .data1(8))]),
            ]),
            DIE(T.typedef, nil, [(A.name, .strp("Holder")), (A.type, .ref4("holder"))]),
        ])))
        let types = DWARFAssembler(continuing: main)
        types.add(.init(version: 4, typeSignature: 0xfeed, typeLabel: "body", inTypesSection: true,
                        root: DIE(T.typeUnit, nil, [(A.language, .data1(0x0c))], children: [
            baseType("long", "long int", size: 8, encoding: 5),
            DIE(T.structureType, "body", [(A.name, .strp("_body")), (A.byteSize, .data1(32))], children: [
                member("x", "long", at: 0),
                member("y", "long", at: 24),
            ]),
        ])))
        let sections = DWARFSections(info: main.patchedInfo, abbrev: types.abbrev, str: types.str, types: types.patchedInfo)
        let reader = try DWARFTypes(sections: sections)
        #expect(reader.unitCount == 2)
        #expect(try reader.resolve("Holder.body.y") == 32)
        #expect(try reader.resolve("struct _body.y") == 24)
        #expect(try reader.resolve("sizeof(struct _body)") == 32)
    }

    /// A struct whose anonymous members are of its own type (only a hostile file does this):
    /// looking up a missing member must stop with an error instead of exploring 2^32 paths.
    @Test func selfNestingAnonymousMembersAreCutOff() throws {
        let dwarf = DWARFAssembler()
        dwarf.add(.init(version: 4, root: DIE(T.compileUnit, nil, [(A.language, .data1(0x0c))], children: [
            baseType("int", "int", size: 4, encoding: 5),
            DIE(T.structureType, "loop", [(A.name, .strp("_loop")), (A.byteSize, .data1(8))], children: [
                member("real", "int", at: 0),
                DIE(T.member, nil, [(A.type, .ref4("loop")), (A.dataMemberLocation, .data1(0))]),
                DIE(T.member, nil, [(A.type, .ref4("loop")), (A.dataMemberLocation, .data1(4))]),
            ]),
        ])))
        let types = try DWARFTypes(sections: dwarf.sections)
        #expect(try types.resolve("struct _loop.real") == 0)
        let clock = ContinuousClock()
        let start = clock.now
        #expect(throws: DWARFError.self) { try types.resolve("struct _loop.missing") }
        #expect(clock.now - start < .seconds(10))
    }

    /// One reader shared by concurrent tasks: the index is built once, answers agree.
    @Test func concurrentQueries() async throws {
        let types = try DWARFTypes(sections: Self.dwarf4())
        let results = await withTaskGroup(of: [Int?].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    ["Outer.inner.b", "sizeof(Outer)", "enum(BLUE)", "Opaque.secret"].map { try? types.resolve($0) }
                }
            }
            var all: [[Int?]] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 8)
        #expect(results.allSatisfy { $0 == [16, 40, -3, 4] })
    }

    // MARK: Real interpreter

    static let libpython312 = "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0"

    @Test func realLibpython312() throws {
        guard let elf = try? ELFFile(path: Self.libpython312) else {
            print("SKIPPED: \(Self.libpython312) not present")
            return
        }
        let clock = ContinuousClock()
        let start = clock.now
        let types = try DWARFTypes(elf: elf)
        #expect(try types.resolve("PyThreadState.interp") == 16)
        #expect(try types.resolve("_PyInterpreterFrame.previous") == 8)
        #expect(try types.resolve("sizeof(PyASCIIObject)") == 40)
        #expect(try types.resolve("PyInterpreterState.ceval.gil") == 384)
        #expect(try types.resolve("enum(FRAME_OWNED_BY_CSTACK)") == 3)
        #expect(try types.resolve("PyLongObject.long_value.lv_tag") == 16)
        #expect(try types.resolve("struct _is.next") == 0)
        // PyASCIIObject.state is a struct of bitfields (DW_AT_data_bit_offset in GCC's DWARF 5).
        #expect(try types.resolve("PyASCIIObject.state") == 32)
        #expect(try types.resolve("PyASCIIObject.state.kind") == 32)
        #expect(try types.bitOffset("PyASCIIObject.state.kind") == 32 * 8 + 2)
        #expect(try types.bitOffset("PyASCIIObject.state.ascii") == 32 * 8 + 6)
        #expect(try types.resolve("sizeof(long int)") == 8)
        #expect(throws: DWARFError.memberNotFound(type: "PyThreadState", member: "no_such_member")) {
            try types.resolve("PyThreadState.no_such_member")
        }
        print("libpython3.12: \(types.unitCount) units, \(try types.indexedNameCount()) names indexed, \(clock.now - start)")
    }
}
