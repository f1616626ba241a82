import PyTap

/// Lays out CPython objects (types, str, bytes, int, dict, code) in a `FakeMemory` the way
/// the interpreter of `layout` would, placing every field with the layout's own offsets.
final class FakeObjects {
    let memory: FakeMemory
    let layout: PythonLayout
    private var builtinTypes: [String: UInt64] = [:]

    /// Big enough for every PyTypeObject field pytap reads (ht_cached_keys is at most 888).
    static let typeObjectSize = 1024

    // Type flags of 3.11+ that the attribute reader looks at.
    static let managedDictFlag: UInt64 = 1 << 4
    static let inlineValuesFlag: UInt64 = 1 << 2

    init(memory: FakeMemory, layout: PythonLayout) {
        self.memory = memory
        self.layout = layout
    }

    convenience init(version: String, memory: FakeMemory = FakeMemory()) throws {
        self.init(memory: memory, layout: try FakeObjects.layout(version))
    }

    /// The built-in layout of a version such as "3.12.1".
    static func layout(_ version: String) throws -> PythonLayout {
        guard let parsed = PythonVersion(string: version) else { throw LayoutError.unsupportedVersion(version) }
        return try PythonLayout(version: parsed)
    }

    var traits: VersionTraits { layout.traits }

    /// The offset of a field this version must have.
    func offset(_ field: LayoutField) -> UInt64 {
        guard let value = layout[field] else { preconditionFailure("\(field) missing in \(layout.version)") }
        return UInt64(value)
    }

    func has(_ field: LayoutField) -> Bool { layout[field] != nil }

    // MARK: Types and object headers

    /// A type object named `name` (one per name for built-in types).
    func type(_ name: String) -> UInt64 {
        if let known = builtinTypes[name] { return known }
        let type = newType(name)
        builtinTypes[name] = type
        return type
    }

    /// A fresh type object (a class), with the fields the attribute reader uses.
    func newType(_ name: String, flags: UInt64 = 0, basicSize: Int64 = 16, dictOffset: Int64 = 0,
                 cachedKeys: UInt64 = 0) -> UInt64 {
        let type = memory.allocate(FakeObjects.typeObjectSize)
        memory.u64(1, at: type)
        memory.pointer(memory.cString(name), at: type + offset(.typeName))
        memory.i64(basicSize, at: type + offset(.typeBasicSize))
        memory.u64(flags, at: type + offset(.typeFlags))
        memory.i64(dictOffset, at: type + offset(.typeDictOffset))
        if let keysOffset = layout[.heapTypeCachedKeys] { memory.pointer(cachedKeys, at: type + UInt64(keysOffset)) }
        return type
    }

    /// Zeroed memory for an object of `size` bytes with refcount 1 and `ob_type`.
    func object(type: UInt64, size: Int) -> UInt64 {
        let object = memory.allocate(size)
        memory.u64(1, at: object)
        memory.pointer(type, at: object + UInt64(layout[.objectType] ?? 8))
        return object
    }

    // MARK: Strings and bytes

    /// PEP 393 state bits: kind in bits 2–4, compact bit 5, ascii bit 6.
    static func unicodeState(kind: Int, compact: Bool, ascii: Bool) -> UInt32 {
        UInt32(kind) << 2 | (compact ? 1 << 5 : 0) | (ascii ? 1 << 6 : 0)
    }

    /// The narrowest PEP 393 kind for `text` and its data in that kind.
    static func pep393Data(_ text: String) -> (kind: Int, ascii: Bool, data: [UInt8]) {
        let scalars = text.unicodeScalars.map(\.value)
        let widest = scalars.max() ?? 0
        let kind = widest <= 0xff ? 1 : widest <= 0xffff ? 2 : 4
        var data = ByteWriter()
        for scalar in scalars {
            switch kind {
            case 1: data.u8(UInt8(scalar))
            case 2: data.u16(UInt16(scalar))
            default: data.u32(scalar)
            }
        }
        return (kind, widest < 0x80, data.bytes)
    }

    /// A `str` as the interpreter makes it: 3.x compact (ASCII or not), 2.7 `str` (bytes).
    func str(_ text: String) -> UInt64 {
        guard traits.strings == .pep393 else { return bytes(Array(text.utf8)) }
        let (kind, ascii, data) = FakeObjects.pep393Data(text)
        let header = Int(ascii ? offset(.asciiObjectSize) : offset(.compactUnicodeObjectSize))
        let object = self.object(type: type("str"), size: header + data.count + kind)
        memory.i64(Int64(text.unicodeScalars.count), at: object + offset(.unicodeLength))
        memory.i64(-1, at: object + offset(.unicodeLength) + 8)  // hash: not computed
        memory.u32(FakeObjects.unicodeState(kind: kind, compact: true, ascii: ascii), at: object + offset(.unicodeState))
        memory.write(data, at: object + UInt64(header))
        return object
    }

    /// A 3.x legacy (non-compact) str: the characters live in a separate buffer.
    func legacyStr(_ text: String) -> UInt64 {
        let (kind, ascii, data) = FakeObjects.pep393Data(text)
        let object = self.object(type: type("str"), size: Int(offset(.unicodeData)) + 8)
        memory.i64(Int64(text.unicodeScalars.count), at: object + offset(.unicodeLength))
        memory.u32(FakeObjects.unicodeState(kind: kind, compact: false, ascii: ascii), at: object + offset(.unicodeState))
        let buffer = memory.allocate(data.count + kind)
        memory.write(data, at: buffer)
        memory.pointer(buffer, at: object + offset(.unicodeData))
        return object
    }

    /// A 2.7 `unicode`: length and a pointer to Py_UNICODE (UCS-4 here) characters.
    func unicode27(_ text: String) -> UInt64 {
        let object = self.object(type: type("unicode"), size: 48)
        var data = ByteWriter()
        for scalar in text.unicodeScalars { data.u32(scalar.value) }
        let buffer = memory.allocate(data.count + 4)
        memory.write(data.bytes, at: buffer)
        memory.i64(Int64(text.unicodeScalars.count), at: object + offset(.unicodeLength))
        memory.pointer(buffer, at: object + offset(.unicodeData))
        return object
    }

    /// A `bytes` object (2.7: `str`).
    func bytes(_ payload: [UInt8]) -> UInt64 {
        let object = self.object(type: type(traits.strings == .python2 ? "str" : "bytes"),
                                 size: Int(offset(.bytesData)) + payload.count + 1)
        memory.i64(Int64(payload.count), at: object + offset(.varObjectSize))
        memory.write(payload, at: object + offset(.bytesData))
        return object
    }

    // MARK: Integers

    /// 30-bit digits of a magnitude, least significant first.
    static func digits(_ magnitude: UInt64) -> [UInt32] {
        var digits = [UInt32]()
        var rest = magnitude
        while rest != 0 {
            digits.append(UInt32(rest & 0x3fff_ffff))
            rest >>= 30
        }
        return digits
    }

    /// An `int` (2.7: `int` when `python2Long` is false) of the given value.
    func int(_ value: Int64, python2Long: Bool = false) -> UInt64 {
        if traits.longs == .python2 && !python2Long {
            let object = self.object(type: type("int"), size: 24)
            memory.i64(value, at: object + offset(.intValue27))
            return object
        }
        return long(digits: FakeObjects.digits(value.magnitude), negative: value < 0)
    }

    /// An arbitrary-precision int from its digits (3.x `int`, 2.7 `long`).
    func long(digits: [UInt32], negative: Bool) -> UInt64 {
        let name = traits.longs == .python2 ? "long" : "int"
        // The reader copies 16 bytes of digits whatever the count.
        let object = self.object(type: type(name), size: Int(offset(.longDigits)) + max(digits.count, 4) * 4)
        switch traits.longs {
        case .python2, .signedSize:
            memory.i64(Int64(digits.count) * (negative ? -1 : 1), at: object + offset(.varObjectSize))
        case .taggedValue:
            let sign: UInt64 = digits.isEmpty ? 1 : negative ? 2 : 0
            memory.u64(UInt64(digits.count) << 3 | sign, at: object + offset(.longTag))
        }
        for (index, digit) in digits.enumerated() {
            memory.u32(digit, at: object + offset(.longDigits) + UInt64(4 * index))
        }
        return object
    }

    // MARK: Dicts

    enum KeysKind: UInt8 {
        case general = 0, unicode = 1, split = 2
    }

    /// A keys object holding `entries` (value 0: a deleted or split entry).
    /// 3.6–3.10 and 3.11+ layouts; `kind` matters only for 3.11+.
    func keys(_ entries: [(key: UInt64, value: UInt64)], kind: KeysKind = .general) -> UInt64 {
        var log2Size = 3
        while (1 << log2Size) * 2 < entries.count * 3 { log2Size += 1 }
        let size = 1 << log2Size
        let indexBytes = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4
        let compact311 = traits.dicts == .compact311
        let entrySize = Int(compact311 && kind != .general ? offset(.dictUnicodeEntrySize) : offset(.dictEntrySize))
        let keyOffset = compact311 && kind != .general ? 0 : Int(offset(.dictEntryKey))
        let valueOffset = compact311 && kind != .general ? 8 : Int(offset(.dictEntryValue))
        let indicesStart = Int(offset(.keysIndices))
        let entriesStart = indicesStart + size * indexBytes
        let keys = memory.allocate(entriesStart + entries.count * entrySize)
        memory.u64(1, at: keys)
        if compact311 {
            memory.u8(UInt8(log2Size), at: keys + offset(.keysLog2Size))
            memory.u8(UInt8(log2Size + (indexBytes == 1 ? 0 : indexBytes == 2 ? 1 : 2)), at: keys + offset(.keysLog2IndexBytes))
            memory.u8(kind.rawValue, at: keys + offset(.keysKind))
        } else {
            memory.i64(Int64(size), at: keys + offset(.keysSize))
        }
        memory.i64(Int64(entries.count), at: keys + offset(.keysNentries))
        // Indices: -1 (empty) except one slot per entry.
        for slot in 0..<size {
            let index = slot < entries.count ? Int64(slot) : -1
            switch indexBytes {
            case 1: memory.u8(UInt8(truncatingIfNeeded: index), at: keys + UInt64(indicesStart + slot))
            default: memory.u16(UInt16(truncatingIfNeeded: index), at: keys + UInt64(indicesStart + 2 * slot))
            }
        }
        for (index, entry) in entries.enumerated() {
            let base = keys + UInt64(entriesStart + index * entrySize)
            if !(compact311 && kind != .general) { memory.i64(Int64(index) * 7919, at: base) }  // me_hash
            memory.pointer(entry.key, at: base + UInt64(keyOffset))
            memory.pointer(entry.value, at: base + UInt64(valueOffset))
        }
        return keys
    }

    /// The values array of a split table (`PyDictValues`; 3.6–3.10: a bare PyObject* array).
    func splitValues(_ values: [UInt64]) -> UInt64 {
        let start = UInt64(layout[.dictValuesValues] ?? 0)
        let array = memory.allocate(Int(start) + max(values.count, 1) * 8)
        if start >= 8 {
            // 3.13+ PyDictValues header: capacity, size, embedded, valid.
            memory.u8(UInt8(values.count), at: array)
            memory.u8(UInt8(values.count), at: array + 1)
            memory.u8(1, at: array + 3)
        }
        for (index, value) in values.enumerated() { memory.pointer(value, at: array + start + UInt64(8 * index)) }
        return array
    }

    /// A dict of `entries`, in the layout of the version (combined table).
    func dict(_ entries: [(key: UInt64, value: UInt64)], kind: KeysKind = .general) -> UInt64 {
        let dict = object(type: type("dict"), size: 64)
        switch traits.dicts {
        case .python27:
            var size = 8
            while size * 2 < entries.count * 3 { size *= 2 }
            let entrySize = Int(offset(.dictEntrySize))
            let table = memory.allocate(size * entrySize)
            // Spread the entries over the table: empty slots lie between them.
            for (index, entry) in entries.enumerated() {
                let slot = table + UInt64((index * 3 % size) * entrySize)
                memory.i64(Int64(index) * 7919, at: slot)
                memory.pointer(entry.key, at: slot + offset(.dictEntryKey))
                memory.pointer(entry.value, at: slot + offset(.dictEntryValue))
            }
            memory.i64(Int64(entries.count), at: dict + offset(.dictUsed))
            memory.i64(Int64(size - 1), at: dict + offset(.dictMask27))
            memory.pointer(table, at: dict + offset(.dictTable27))
        case .compact36, .compact311:
            memory.i64(Int64(entries.count), at: dict + offset(.dictUsed))
            memory.pointer(keys(entries, kind: kind), at: dict + offset(.dictKeys))
        }
        return dict
    }

    /// A split dict (3.6+): keys shared with the class, values in a separate array.
    func splitDict(keys names: [UInt64], values: [UInt64]) -> UInt64 {
        let dict = object(type: type("dict"), size: 64)
        memory.pointer(keys(names.map { ($0, 0) }, kind: .split), at: dict + offset(.dictKeys))
        memory.pointer(splitValues(values), at: dict + offset(.dictValues))
        return dict
    }

    // MARK: Instances

    /// An instance of a new class holding `attributes`, stored the way the version stores a
    /// plain class's instance attributes: a dict at tp_dictoffset (≤3.10), managed values
    /// before the object (3.11), tagged values (3.12) or inline values after it (3.13+).
    func instance(className: String, attributes: [(name: String, value: UInt64)]) -> UInt64 {
        let names = attributes.map { str($0.name) }
        let values = attributes.map(\.value)
        guard traits.managedDicts != .dictOffset else {
            let type = newType(className, basicSize: 24, dictOffset: 16)
            let object = self.object(type: type, size: 24)
            memory.pointer(dict(Array(zip(names, values))), at: object + 16)
            return object
        }
        let inline = traits.managedDicts == .inlineValues
        let basicSize: Int64 = 16
        let flags = FakeObjects.managedDictFlag | (inline ? FakeObjects.inlineValuesFlag : 0)
        let type = newType(className, flags: flags, basicSize: basicSize, dictOffset: -1,
                           cachedKeys: keys(names.map { ($0, 0) }, kind: .split))
        // Pre-header words (dict, values) before the object; inline values after it.
        let object = memory.allocate(32 + Int(basicSize) + 8 + 8 * values.count) + 32
        memory.u64(1, at: object)
        memory.pointer(type, at: object + offset(.objectType))
        switch traits.managedDicts {
        case .python311:
            memory.pointer(splitValues(values), at: object - 32)
        case .python312:
            memory.pointer(splitValues(values) - 1, at: object - 24)
        default:
            let inlineValues = object + UInt64(basicSize)
            memory.u8(UInt8(values.count), at: inlineValues)
            memory.u8(UInt8(values.count), at: inlineValues + 1)
            memory.u8(1, at: inlineValues + 2)
            memory.u8(1, at: inlineValues + 3)
            for (index, value) in values.enumerated() {
                memory.pointer(value, at: inlineValues + offset(.dictValuesValues) + UInt64(8 * index))
            }
        }
        return object
    }

    // MARK: Code objects

    /// A code object whose line table is `lineTable` (already encoded for this version).
    /// 3.12+: `co_version` of the next code object made, counted up as the interpreter does.
    var nextCodeVersion: UInt32 = 1

    func code(name: String, qualname: String? = nil, filename: String, firstLine: Int, lineTable: [UInt8],
              codeType: UInt64? = nil, firstTraceable: Int32 = 0, nameObject: UInt64? = nil) -> UInt64 {
        let size = Int(layout[.codeCodeAdaptive].map { $0 + 256 } ?? 256)
        let code = object(type: codeType ?? type("code"), size: size)
        memory.pointer(str(filename), at: code + offset(.codeFilename))
        memory.pointer(nameObject ?? str(name), at: code + offset(.codeName))
        if let qualnameOffset = layout[.codeQualname] {
            memory.pointer(str(qualname ?? name), at: code + UInt64(qualnameOffset))
        }
        memory.i32(Int32(firstLine), at: code + offset(.codeFirstLineno))
        memory.pointer(bytes(lineTable), at: code + offset(.codeLineTable))
        if let traceable = layout[.codeFirstTraceable] { memory.i32(firstTraceable, at: code + UInt64(traceable)) }
        if let version = layout[.codeVersion] {
            memory.u32(nextCodeVersion, at: code + UInt64(version))
            if nextCodeVersion != 0 { nextCodeVersion &+= 1 }
        }
        // 3.11+: ob_size counts the code units after co_code_adaptive (256 bytes here).
        if layout[.codeCodeAdaptive] != nil { memory.i64(128, at: code + offset(.varObjectSize)) }
        return code
    }
}

/// Encodes line tables in each CPython format, for code objects whose instructions are
/// one code unit (2 bytes) each.
enum FakeLineTable {
    /// A table where instruction `i` (bytes 2i, 2i+1) is on `lines[i]` (nil: no line, 3.10+).
    static func encode(_ format: VersionTraits.LineTableFormat, firstLine: Int, lines: [Int?]) -> [UInt8] {
        var bytes = [UInt8]()
        var previous = firstLine
        switch format {
        case .lnotabUnsigned, .lnotabSigned:
            // (address increment, line increment) pairs; the increment takes effect after
            // the address range, so each unit's line is set by a zero-length pair before it.
            let (low, high) = format == .lnotabSigned ? (-128, 127) : (0, 255)
            for line in lines {
                var delta = (line ?? previous) - previous
                precondition(delta >= 0 || format == .lnotabSigned, "2.7 lnotab cannot go back")
                while delta > high || delta < low {
                    let step = delta > 0 ? high : low
                    bytes += [0, UInt8(truncatingIfNeeded: step)]
                    delta -= step
                }
                bytes += [0, UInt8(truncatingIfNeeded: delta)]
                bytes += [2, 0]
                previous = line ?? previous
            }
        case .lineTable310:
            for line in lines {
                guard let line else {
                    bytes += [2, 0x80]
                    continue
                }
                var delta = line - previous
                while delta > 127 || delta < -127 {
                    let step = delta > 0 ? 127 : -127
                    bytes += [0, UInt8(truncatingIfNeeded: step)]
                    delta -= step
                }
                bytes += [2, UInt8(truncatingIfNeeded: delta)]
                previous = line
            }
        case .locationTable311:
            for line in lines {
                guard let line else {
                    bytes.append(0x80 | 15 << 3)
                    continue
                }
                bytes.append(0x80 | 13 << 3)  // no-column form, one code unit
                bytes += signedVarint(line - previous)
                previous = line
            }
        }
        return bytes
    }

    /// locations.md varint: 6-bit chunks, least significant first, bit 6 = more follows.
    static func varint(_ value: UInt64) -> [UInt8] {
        var rest = value
        var bytes = [UInt8]()
        while rest >= 64 {
            bytes.append(UInt8(rest & 63) | 64)
            rest >>= 6
        }
        bytes.append(UInt8(rest))
        return bytes
    }

    /// Signed varint: magnitude << 1, low bit = negative.
    static func signedVarint(_ value: Int) -> [UInt8] {
        varint(value < 0 ? UInt64(-value) << 1 | 1 : UInt64(value) << 1)
    }
}
