import Testing
import PyTap

/// `ObjectReader.dictEntries`, `dictLookup` and `attribute(_:named:)` on the dict layouts of
/// 2.7, 3.6–3.10 and 3.11+, and on instance dicts, 3.11 managed dicts, 3.12 tagged
/// dict-or-values and 3.13+ inline values.
@Suite struct ReaderDictAndAttributeTests {
    static let allVersions = ["2.7.18", "3.6.15", "3.10.13", "3.11.7", "3.12.1", "3.13.0", "3.14.0"]
    static let splitVersions = ["3.6.15", "3.10.13", "3.11.7", "3.12.1", "3.13.0", "3.14.0"]

    private func fixture(_ version: String) throws -> (FakeObjects, ObjectReader) {
        let objects = try FakeObjects(version: version)
        return (objects, ObjectReader(memory: objects.memory, layout: objects.layout))
    }

    private func pairs(_ entries: [(key: UInt64, value: UInt64)]) -> Set<[UInt64]> {
        Set(entries.map { [$0.key, $0.value] })
    }

    // MARK: Dicts

    @Test(arguments: allVersions)
    func combinedDictWithMixedKeys(version: String) throws {
        let (o, reader) = try fixture(version)
        let one = o.int(1), two = o.int(2), three = o.int(3), four = o.int(4), five = o.int(5)
        let alpha = o.str("alpha"), beta = o.str("beta"), dummy = o.str("<dummy>")
        // A non-ASCII key: 2.7 unicode, 3.x compact UCS1; and a key that is not a str.
        let naive = o.traits.strings == .python2 ? o.unicode27("naïve") : o.str("naïve")
        let japanese = o.traits.strings == .python2 ? o.unicode27("日本") : o.str("日本")
        let number = o.int(7)
        // A deleted entry keeps its key (the dummy) with no value.
        let dict = o.dict([(alpha, one), (beta, two), (dummy, 0), (naive, three), (number, four), (japanese, five)])

        #expect(pairs(try reader.dictEntries(dict)) == pairs([(alpha, one), (beta, two), (naive, three), (number, four), (japanese, five)]))
        #expect(try reader.dictLookup(dict, key: "alpha") == one)
        #expect(try reader.dictLookup(dict, key: "beta") == two)
        #expect(try reader.dictLookup(dict, key: "naïve") == three)
        #expect(try reader.dictLookup(dict, key: "日本") == five)
        for missing in ["missing", "alph", "alphabet", "", "<dummy>", "naive", "7"] {
            #expect(try reader.dictLookup(dict, key: missing) == nil, "\(missing)")
        }
        #expect(try reader.dictEntries(o.dict([])).isEmpty)
        #expect(try reader.dictLookup(o.dict([]), key: "x") == nil)
    }

    @Test(arguments: ["3.11.7", "3.12.1", "3.13.0", "3.14.0"])
    func unicodeKeyedDictOf311(version: String) throws {
        let (o, reader) = try fixture(version)
        let keys = (0..<40).map { o.str("key\($0)") }
        let values = (0..<40).map { o.int(Int64($0) * 10) }
        // 40 entries need a 64-slot table: still one-byte indices, more than one read's guess.
        let dict = o.dict(Array(zip(keys, values)), kind: .unicode)
        #expect(try reader.dictEntries(dict).map(\.key) == keys)
        #expect(try reader.dictLookup(dict, key: "key0") == values[0])
        #expect(try reader.dictLookup(dict, key: "key39") == values[39])
        #expect(try reader.dictLookup(dict, key: "key40") == nil)
        #expect(try reader.integer(try #require(try reader.dictLookup(dict, key: "key17"))) == 170)
    }

    @Test(arguments: ["2.7.18", "3.6.15", "3.10.13", "3.12.1"])
    func largeDictUsesWiderIndices(version: String) throws {
        let (o, reader) = try fixture(version)
        // 300 entries: 512 slots, so 3.6+ indices take two bytes each.
        let keys = (0..<300).map { o.str("name_\($0)") }
        let dict = o.dict(keys.map { ($0, $0) })
        #expect(try reader.dictEntries(dict).count == 300)
        #expect(try reader.dictLookup(dict, key: "name_299") == keys[299])
        #expect(try reader.dictLookup(dict, key: "name_300") == nil)
    }

    @Test(arguments: splitVersions)
    func splitDictTakesValuesFromItsValuesArray(version: String) throws {
        let (o, reader) = try fixture(version)
        let name = o.str("name"), ident = o.str("ident"), daemon = o.str("daemon")
        let worker = o.str("Worker-1"), seven = o.int(7)
        // `ident` has no value in this instance.
        let dict = o.splitDict(keys: [name, ident, daemon], values: [worker, 0, seven])
        #expect(pairs(try reader.dictEntries(dict)) == pairs([(name, worker), (daemon, seven)]))
        #expect(try reader.dictLookup(dict, key: "name") == worker)
        #expect(try reader.dictLookup(dict, key: "daemon") == seven)
        #expect(try reader.dictLookup(dict, key: "ident") == nil)
    }

    @Test func implausibleDictSizesThrow() throws {
        let (o27, reader27) = try fixture("2.7.18")
        let dict27 = o27.dict([(o27.str("a"), o27.int(1))])
        for mask: Int64 in [1 << 40, -1, Int64(ObjectReader.maximumDictEntries)] {
            o27.memory.i64(mask, at: dict27 + o27.offset(.dictMask27))
            #expect(throws: ObjectReadError.implausible(what: "dict mask", value: mask)) { try reader27.dictEntries(dict27) }
        }

        let (o36, reader36) = try fixture("3.6.15")
        let dict36 = o36.dict([(o36.str("a"), o36.int(1))])
        let keys36 = o36.readPointer(dict36 + o36.offset(.dictKeys))
        o36.memory.i64(1 << 40, at: keys36 + o36.offset(.keysNentries))
        #expect(throws: ObjectReadError.implausible(what: "dict entries", value: 1 << 40)) { try reader36.dictEntries(dict36) }
        o36.memory.i64(1, at: keys36 + o36.offset(.keysNentries))
        o36.memory.i64(0, at: keys36 + o36.offset(.keysSize))
        #expect(throws: ObjectReadError.implausible(what: "dict size", value: 0)) { try reader36.dictEntries(dict36) }

        let (o312, reader312) = try fixture("3.12.1")
        let dict312 = o312.dict([(o312.str("a"), o312.int(1))])
        let keys312 = o312.readPointer(dict312 + o312.offset(.dictKeys))
        o312.memory.u8(40, at: keys312 + o312.offset(.keysLog2IndexBytes))
        #expect(throws: ObjectReadError.implausible(what: "dict index bytes", value: 40)) { try reader312.dictEntries(dict312) }
        o312.memory.u8(3, at: keys312 + o312.offset(.keysLog2IndexBytes))
        o312.memory.i64(-2, at: keys312 + o312.offset(.keysNentries))
        #expect(throws: ObjectReadError.implausible(what: "dict entries", value: -2)) { try reader312.dictLookup(dict312, key: "a") }
        for memory in [o27.memory, o36.memory, o312.memory] {
            #expect(memory.readLog.map(\.count).max() ?? 0 <= 4096)
        }
    }

    @Test(arguments: ["3.10.13", "3.12.1"])
    func lookupFindsAnASCIIKeyStoredAsALegacyString(version: String) throws {
        // An instance of a str subclass is a legacy (non-compact) str even when it is ASCII.
        let (o, reader) = try fixture(version)
        let value = o.int(1)
        let dict = o.dict([(o.legacyStr("name"), value)], kind: .general)
        #expect(try reader.string(try #require(try reader.dictEntries(dict).first).key) == "name")
        #expect(try reader.dictLookup(dict, key: "name") == value)
    }

    // MARK: Attributes

    @Test(arguments: allVersions)
    func attributeFromTheInstanceDictAtTpDictOffset(version: String) throws {
        let (o, reader) = try fixture(version)
        let type = o.newType("Thread", basicSize: 24, dictOffset: 16)
        let thread = o.object(type: type, size: 24)
        let name = o.str("Worker-1")
        let attribute = o.traits.strings == .python2 ? "_Thread__name" : "_name"
        o.memory.pointer(o.dict([(o.str(attribute), name), (o.str("daemon"), o.int(1))]), at: thread + 16)
        #expect(try reader.attribute(thread, named: attribute) == name)
        #expect(try reader.string(try #require(try reader.attribute(thread, named: attribute))) == "Worker-1")
        #expect(try reader.attribute(thread, named: "missing") == nil)

        // No dict yet, or a type without instance dicts, or a negative (var-sized) offset.
        let bare = o.object(type: type, size: 24)
        #expect(try reader.attribute(bare, named: attribute) == nil)
        for offset: Int64 in [0, -8, 1 << 20] {
            let other = o.newType("NoDict", basicSize: 24, dictOffset: offset)
            #expect(try reader.attribute(o.object(type: other, size: 24), named: attribute) == nil)
        }
    }

    /// An instance of a class with a managed dict: words before the object hold the dict
    /// (and in 3.11 the values) pointers.
    private func managedInstance(_ o: FakeObjects, type: UInt64, size: Int = 16) -> UInt64 {
        let object = o.memory.allocate(32 + size) + 32
        o.memory.u64(1, at: object)
        o.memory.pointer(type, at: object + o.offset(.objectType))
        return object
    }

    /// A class whose instances share `names` as keys (ht_cached_keys).
    private func managedClass(_ o: FakeObjects, names: [String], flags: UInt64, basicSize: Int64 = 16) -> UInt64 {
        let keys = o.keys(names.map { (o.str($0), 0) }, kind: .split)
        return o.newType("Worker", flags: flags, basicSize: basicSize, dictOffset: -1, cachedKeys: keys)
    }

    @Test func python311ManagedDictOrValuesBeforeTheObject() throws {
        let (o, reader) = try fixture("3.11.7")
        let type = managedClass(o, names: ["_name", "_ident"], flags: FakeObjects.managedDictFlag)
        let name = o.str("Worker-2"), ident = o.int(12345)
        // Values only (no dict materialised): values pointer at -4 words.
        let withValues = managedInstance(o, type: type)
        o.memory.pointer(o.splitValues([name, ident]), at: withValues - 32)
        #expect(try reader.attribute(withValues, named: "_name") == name)
        #expect(try reader.attribute(withValues, named: "_ident") == ident)
        #expect(try reader.attribute(withValues, named: "other") == nil)
        // A dict (at -3 words) wins over the values.
        let withDict = managedInstance(o, type: type)
        let other = o.str("from dict")
        o.memory.pointer(o.dict([(o.str("_name"), other)]), at: withDict - 24)
        o.memory.pointer(o.splitValues([name, ident]), at: withDict - 32)
        #expect(try reader.attribute(withDict, named: "_name") == other)
        // Neither: no attributes.
        #expect(try reader.attribute(managedInstance(o, type: type), named: "_name") == nil)
    }

    @Test func python312TaggedDictOrValues() throws {
        let (o, reader) = try fixture("3.12.1")
        let type = managedClass(o, names: ["_name", "_ident"], flags: FakeObjects.managedDictFlag)
        let name = o.str("Worker-3"), ident = o.int(99)
        // Values: stored as (values - 1), the low bit telling them from a dict.
        let withValues = managedInstance(o, type: type)
        o.memory.pointer(o.splitValues([name, ident]) - 1, at: withValues - 24)
        #expect(try reader.attribute(withValues, named: "_name") == name)
        #expect(try reader.attribute(withValues, named: "_ident") == ident)
        let withDict = managedInstance(o, type: type)
        let other = o.str("from dict")
        o.memory.pointer(o.dict([(o.str("_name"), other)]), at: withDict - 24)
        #expect(try reader.attribute(withDict, named: "_name") == other)
        #expect(try reader.attribute(managedInstance(o, type: type), named: "_name") == nil)
    }

    @Test(arguments: ["3.13.0", "3.14.0"])
    func inlineValuesAfterTheObject(version: String) throws {
        let (o, reader) = try fixture(version)
        let flags = FakeObjects.managedDictFlag | FakeObjects.inlineValuesFlag
        let basicSize: Int64 = 32
        let type = managedClass(o, names: ["_name", "_ident"], flags: flags, basicSize: basicSize)
        let name = o.str("Worker-4"), ident = o.int(7)
        /// An instance whose inline values (PyDictValues at tp_basicsize) hold `values`.
        func instance(valid: Bool) -> UInt64 {
            let object = managedInstance(o, type: type, size: Int(basicSize) + 8 + 16)
            let values = object + UInt64(basicSize)
            o.memory.u8(2, at: values)       // capacity
            o.memory.u8(2, at: values + 1)   // size
            o.memory.u8(1, at: values + 2)   // embedded
            o.memory.u8(valid ? 1 : 0, at: values + 3)
            o.memory.pointer(name, at: values + o.offset(.dictValuesValues))
            o.memory.pointer(ident, at: values + o.offset(.dictValuesValues) + 8)
            return object
        }
        let inline = instance(valid: true)
        #expect(try reader.attribute(inline, named: "_name") == name)
        #expect(try reader.attribute(inline, named: "_ident") == ident)
        #expect(try reader.attribute(inline, named: "other") == nil)
        // Values no longer valid (the dict was materialised): only the dict counts.
        let invalid = instance(valid: false)
        #expect(try reader.attribute(invalid, named: "_name") == nil)
        let other = o.str("from dict")
        o.memory.pointer(o.dict([(o.str("_name"), other)]), at: invalid - 24)
        #expect(try reader.attribute(invalid, named: "_name") == other)

        // A managed dict without inline values and no dict: nothing.
        let plainType = managedClass(o, names: ["_name"], flags: FakeObjects.managedDictFlag)
        #expect(try reader.attribute(managedInstance(o, type: plainType), named: "_name") == nil)
        // A garbage tp_basicsize is rejected before it is used as an offset.
        let badType = managedClass(o, names: ["_name"], flags: flags, basicSize: 1 << 40)
        #expect(throws: ObjectReadError.implausible(what: "tp_basicsize", value: 1 << 40)) {
            try reader.attribute(managedInstance(o, type: badType), named: "_name")
        }
    }

    @Test(arguments: ["2.7.18", "3.10.13"])
    func managedDictFlagIsIgnoredBefore311(version: String) throws {
        // Bit 4 of tp_flags meant something else before 3.11: the dict is at tp_dictoffset.
        let (o, reader) = try fixture(version)
        let type = o.newType("Old", flags: FakeObjects.managedDictFlag, basicSize: 24, dictOffset: 16)
        let object = o.object(type: type, size: 24)
        let value = o.int(5)
        o.memory.pointer(o.dict([(o.str("x"), value)]), at: object + 16)
        #expect(try reader.attribute(object, named: "x") == value)
    }
}

extension FakeObjects {
    func readPointer(_ address: UInt64) -> UInt64 {
        memory.peek(address, count: 8)!.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }
}
