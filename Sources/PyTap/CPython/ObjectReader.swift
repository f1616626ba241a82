/// Why a Python object could not be decoded.
public enum ObjectReadError: Error, Equatable, Sendable {
    /// A length, count or size beyond pytap's caps: garbage, or not the object expected.
    case implausible(what: String, value: Int64)
    /// The object is not of the kind expected.
    case unexpectedType(expected: String, found: String)
    /// The string is in a form pytap does not decode (e.g. a 3.3–3.11 not-ready legacy string).
    case unsupportedString(kind: Int)
}

/// Decodes Python objects in remote memory: str/bytes, int, dict, instance attributes.
/// Every length and count is capped; every read is bounds-checked by `RemoteBytes`.
public final class ObjectReader {
    public let memory: RemoteMemory
    public let layout: PythonLayout
    private var typeNames: [UInt64: String] = [:]
    /// tp_flags, tp_basicsize, tp_dictoffset by type address (instances of one class share them).
    private var typeHeads: [UInt64: RemoteBytes] = [:]

    /// Longest string pytap decodes (characters).
    public static let maximumStringLength = 1 << 16
    /// Most entries pytap reads from one dict.
    public static let maximumDictEntries = 1 << 16

    public init(memory: RemoteMemory, layout: PythonLayout) {
        self.memory = memory
        self.layout = layout
    }

    // MARK: Types

    public func typeOf(_ object: UInt64) throws -> UInt64 {
        try memory.readPointer(object &+ UInt64(try layout.require(.objectType)))
    }

    /// `tp_name` of a type object, cached by address.
    public func typeName(_ type: UInt64) throws -> String {
        if let name = typeNames[type] { return name }
        let namePointer = try memory.readPointer(type &+ UInt64(try layout.require(.typeName)))
        let name = try readCString(namePointer, limit: 256)
        typeNames[type] = name
        return name
    }

    public func typeNameOf(_ object: UInt64) throws -> String {
        try typeName(try typeOf(object))
    }

    /// Reads `preferred` bytes (header and a typical payload in one system call), or only
    /// `minimum` when the larger read runs off the end of a mapping (a small object can be
    /// the last of its arena).
    func readPrefetched(_ address: UInt64, minimum: Int, preferred: Int) throws -> RemoteBytes {
        do {
            return try memory.readStruct(address, count: preferred)
        } catch MemoryReadError.unmapped {
            return try memory.readStruct(address, count: minimum)
        }
    }

    /// A NUL-terminated C string of at most `limit` bytes.
    public func readCString(_ address: UInt64, limit: Int) throws -> String {
        var bytes = [UInt8]()
        var position = address
        while bytes.count < limit {
            // Read in small steps so a string near the end of a mapping does not fault.
            let step = min(64, limit - bytes.count, Int(4096 - (position & 4095)))
            let chunk = try memory.readBytes(position, count: step)
            if let end = chunk.firstIndex(of: 0) {
                bytes.append(contentsOf: chunk[..<end])
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.append(contentsOf: chunk)
            position &+= UInt64(step)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Strings

    /// Decodes a `str` (3.x unicode; 2.7 str or unicode) or `bytes` object. A string longer
    /// than `maximumLength` throws, or with `truncating` is cut there and ends in "…" (up to
    /// `maximumTruncatedLength` characters, beyond which a length is garbage).
    public func string(_ object: UInt64, maximumLength: Int = ObjectReader.maximumStringLength,
                       truncating: Bool = false) throws -> String {
        let limit = StringLimit(maximumLength: maximumLength, truncating: truncating)
        switch layout.traits.strings {
        case .pep393:
            return try unicode393(object, limit: limit)
        case .python2:
            let name = try typeNameOf(object)
            if name == "unicode" { return try unicode27(object, limit: limit) }
            let data = try bytes(object, maximumLength: limit.acceptedLength, keepingAtMost: limit.maximumLength)
            return limit.ending(String(decoding: data.bytes, as: UTF8.self), cut: data.cut)
        }
    }

    /// Longest string length accepted for truncation; longer is not a string (garbage).
    public static let maximumTruncatedLength = 1 << 30

    /// The payload of a `bytes` object (2.7: `str`).
    public func bytes(_ object: UInt64, maximumLength: Int = LineTable.maximumBytes) throws -> [UInt8] {
        try bytes(object, maximumLength: maximumLength, keepingAtMost: maximumLength).bytes
    }

    /// The first `keepingAtMost` bytes of a `bytes` object of at most `maximumLength`, and
    /// whether it was longer.
    private func bytes(_ object: UInt64, maximumLength: Int, keepingAtMost kept: Int) throws -> (bytes: [UInt8], cut: Bool) {
        let sizeOffset = try layout.require(.varObjectSize)
        let dataOffset = try layout.require(.bytesData)
        // One read usually covers header and data.
        let head = try readPrefetched(object, minimum: dataOffset, preferred: dataOffset + 128)
        let size = try head.i64(sizeOffset)
        guard size >= 0, size <= Int64(maximumLength) else { throw ObjectReadError.implausible(what: "bytes length", value: size) }
        let count = min(Int(size), kept)
        if dataOffset + count <= head.count { return (Array(try head.slice(dataOffset, count: count)), count < size) }
        return (try memory.readBytes(object &+ UInt64(dataOffset), count: count), count < size)
    }

    private func unicode393(_ object: UInt64, limit: StringLimit) throws -> String {
        let lengthOffset = try layout.require(.unicodeLength)
        let stateOffset = try layout.require(.unicodeState)
        let asciiSize = try layout.require(.asciiObjectSize)
        let compactSize = try layout.require(.compactUnicodeObjectSize)
        // Read the largest header plus a typical name in one go.
        let head = try readPrefetched(object, minimum: asciiSize, preferred: max(compactSize, asciiSize) + 64)
        let fullLength = try head.i64(lengthOffset)
        guard fullLength >= 0, fullLength <= Int64(limit.acceptedLength) else {
            throw ObjectReadError.implausible(what: "str length", value: fullLength)
        }
        let length = min(fullLength, Int64(limit.maximumLength))
        let state = layout.traits.unicodeState
        let stateWord = try head.u32(stateOffset)
        let kind = Int((stateWord >> state.kindShift) & state.kindMask)
        let compact = (stateWord >> state.compactBit) & 1 == 1
        let ascii = (stateWord >> state.asciiBit) & 1 == 1
        guard kind == 1 || kind == 2 || kind == 4 else { throw ObjectReadError.unsupportedString(kind: kind) }
        let byteCount = Int(length) * kind
        var data: [UInt8]
        if compact {
            let dataOffset = ascii ? asciiSize : compactSize
            if dataOffset + byteCount <= head.count {
                data = Array(try head.slice(dataOffset, count: byteCount))
            } else {
                data = try memory.readBytes(object &+ UInt64(dataOffset), count: byteCount)
            }
        } else {
            let pointer = try head.pointer(try layout.require(.unicodeData))
            data = try memory.readBytes(pointer, count: byteCount)
        }
        return limit.ending(ObjectReader.decode(data, kind: kind), cut: length < fullLength)
    }

    private func unicode27(_ object: UInt64, limit: StringLimit) throws -> String {
        let head = try memory.readStruct(object, count: max(try layout.require(.unicodeLength), try layout.require(.unicodeData)) + 8)
        let fullLength = try head.i64(try layout.require(.unicodeLength))
        guard fullLength >= 0, fullLength <= Int64(limit.acceptedLength) else {
            throw ObjectReadError.implausible(what: "unicode length", value: fullLength)
        }
        let length = min(fullLength, Int64(limit.maximumLength))
        let unit = try layout.require(.unicodeCharSize27)
        let pointer = try head.pointer(try layout.require(.unicodeData))
        let text = ObjectReader.decode(try memory.readBytes(pointer, count: Int(length) * unit), kind: unit)
        return limit.ending(text, cut: length < fullLength)
    }

    /// How long a string may be, and whether a longer one is cut or refused.
    struct StringLimit {
        let maximumLength: Int
        let truncating: Bool

        /// Longest length not refused as garbage.
        var acceptedLength: Int { truncating ? max(maximumLength, ObjectReader.maximumTruncatedLength) : maximumLength }

        func ending(_ text: String, cut: Bool) -> String { cut ? text + "…" : text }
    }

    /// Decodes PEP 393 data of 1 (Latin-1), 2 (UCS-2) or 4 (UCS-4) bytes per character.
    static func decode(_ data: [UInt8], kind: Int) -> String {
        var scalars = String.UnicodeScalarView()
        switch kind {
        case 1:
            if data.allSatisfy({ $0 < 0x80 }) { return String(decoding: data, as: UTF8.self) }
            for byte in data { scalars.append(Unicode.Scalar(byte)) }
        case 2:
            var index = 0
            var units = [UInt16]()
            units.reserveCapacity(data.count / 2)
            while index + 1 < data.count {
                units.append(UInt16(data[index]) | UInt16(data[index + 1]) << 8)
                index += 2
            }
            return String(decoding: units, as: UTF16.self)
        default:
            var index = 0
            while index + 3 < data.count {
                let value = UInt32(data[index]) | UInt32(data[index + 1]) << 8 | UInt32(data[index + 2]) << 16 | UInt32(data[index + 3]) << 24
                scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
                index += 4
            }
        }
        return String(scalars)
    }

    // MARK: Integers

    /// Decodes an `int` (and 2.7 `long`) that fits in an Int64; larger values throw.
    public func integer(_ object: UInt64) throws -> Int64 {
        let (negative, magnitude) = try integerParts(object)
        if negative {
            guard magnitude <= UInt64(1) << 63 else { throw ObjectReadError.implausible(what: "int beyond Int64", value: -1) }
            return Int64(bitPattern: ~magnitude &+ 1)
        }
        guard magnitude <= UInt64(Int64.max) else { throw ObjectReadError.implausible(what: "int beyond Int64", value: 1) }
        return Int64(magnitude)
    }

    /// Decodes a non-negative `int` that fits in a UInt64 (e.g. a thread ident).
    public func unsignedInteger(_ object: UInt64) throws -> UInt64 {
        let (negative, magnitude) = try integerParts(object)
        guard !negative || magnitude == 0 else { throw ObjectReadError.implausible(what: "negative int", value: -1) }
        return magnitude
    }

    /// Sign and magnitude of an int of at most 64 bits.
    private func integerParts(_ object: UInt64) throws -> (negative: Bool, magnitude: UInt64) {
        let digitsOffset = try layout.require(.longDigits)
        let head = try readPrefetched(object, minimum: digitsOffset, preferred: digitsOffset + 16)
        let digitSize = try layout.require(.digitSize)
        let digitBits = digitSize == 4 ? 30 : 15
        var count: Int
        var negative: Bool
        if layout.traits.longs == .python2, try typeNameOf(object) == "int" {
            let value = try head.i64(try layout.require(.intValue27))
            return (value < 0, value.magnitude)
        }
        let header = try longHeader(head)
        count = Int(min(header.count, 9))
        negative = header.negative
        guard count * digitBits <= 64 + digitBits else { throw ObjectReadError.implausible(what: "int digits", value: Int64(count)) }
        let digits = digitsOffset + count * digitSize <= head.count
            ? head : try memory.readStruct(object, count: digitsOffset + count * digitSize)
        var magnitude: UInt64 = 0
        for index in 0..<count {
            let digit: UInt64 = digitSize == 4 ? UInt64(try digits.u32(digitsOffset + 4 * index)) : UInt64(try digits.u16(digitsOffset + 2 * index))
            let shift = index * digitBits
            guard digit == 0 || (shift < 64 && digit >> UInt64(64 - shift) == 0) else {
                throw ObjectReadError.implausible(what: "int beyond 64 bits", value: Int64(count))
            }
            if digit != 0 { magnitude |= digit << UInt64(shift) }
        }
        return (negative, magnitude)
    }

    /// Sign and digit count of an int (3.x, or a 2.7 long) from a copy of its header.
    func longHeader(_ head: RemoteBytes) throws -> (negative: Bool, count: UInt64) {
        switch layout.traits.longs {
        case .python2, .signedSize:
            let size = try head.i64(try layout.require(.varObjectSize))
            return (size < 0, size.magnitude)
        case .taggedValue:
            let tag = try head.u64(try layout.require(.longTag))
            return (tag & 3 == 2, tag >> 3)
        }
    }

    // MARK: Dicts

    /// (key, value) object pointers of a dict, live entries only.
    public func dictEntries(_ dict: UInt64) throws -> [(key: UInt64, value: UInt64)] {
        switch layout.traits.dicts {
        case .python27:
            let head = try memory.readStruct(dict, count: max(try layout.require(.dictMask27), try layout.require(.dictTable27)) + 8)
            let mask = try head.i64(try layout.require(.dictMask27))
            guard mask >= 0, mask < Int64(ObjectReader.maximumDictEntries) else {
                throw ObjectReadError.implausible(what: "dict mask", value: mask)
            }
            let table = try head.pointer(try layout.require(.dictTable27))
            return try entryPairs(at: table, count: Int(mask) + 1, entrySize: try layout.require(.dictEntrySize),
                                  keyOffset: try layout.require(.dictEntryKey), valueOffset: try layout.require(.dictEntryValue),
                                  values: nil)
        case .compact36, .compact311:
            let head = try memory.readStruct(dict, count: max(try layout.require(.dictKeys), try layout.require(.dictValues)) + 8)
            let keys = try head.pointer(try layout.require(.dictKeys))
            let values = try head.pointer(try layout.require(.dictValues))
            return try keysEntries(keys, values: values == 0 ? nil : try splitValuesArray(values))
        }
    }

    /// Entries of a PyDictKeysObject; `values` is the split-table values array, if any.
    func keysEntries(_ keys: UInt64, values: UInt64?) throws -> [(key: UInt64, value: UInt64)] {
        let indicesOffset = try layout.require(.keysIndices)
        let head = try memory.readStruct(keys, count: indicesOffset)
        let entries: UInt64
        var entrySize = try layout.require(.dictEntrySize)
        var keyOffset = try layout.require(.dictEntryKey)
        var valueOffset = try layout.require(.dictEntryValue)
        let count = try head.i64(try layout.require(.keysNentries))
        guard count >= 0, count <= Int64(ObjectReader.maximumDictEntries) else {
            throw ObjectReadError.implausible(what: "dict entries", value: count)
        }
        if layout.traits.dicts == .compact36 {
            let size = try head.i64(try layout.require(.keysSize))
            guard size > 0, size <= Int64(ObjectReader.maximumDictEntries) * 2 else {
                throw ObjectReadError.implausible(what: "dict size", value: size)
            }
            let indexBytes: Int64 = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffff_ffff ? 4 : 8
            entries = keys &+ UInt64(indicesOffset) &+ UInt64(size * indexBytes)
        } else {
            let log2IndexBytes = Int(try head.u8(try layout.require(.keysLog2IndexBytes)))
            guard log2IndexBytes < 24 else { throw ObjectReadError.implausible(what: "dict index bytes", value: Int64(log2IndexBytes)) }
            entries = keys &+ UInt64(indicesOffset) &+ (UInt64(1) << UInt64(log2IndexBytes))
            let kind = try head.u8(try layout.require(.keysKind))
            if Int(kind) != (try layout.require(.dictKeysGeneral)) {
                // DICT_KEYS_UNICODE / DICT_KEYS_SPLIT: entries are (key, value) without the hash.
                entrySize = try layout.require(.dictUnicodeEntrySize)
                keyOffset = 0
                valueOffset = 8
            }
        }
        return try entryPairs(at: entries, count: Int(count), entrySize: entrySize, keyOffset: keyOffset,
                              valueOffset: valueOffset, values: values)
    }

    private func entryPairs(at address: UInt64, count: Int, entrySize: Int, keyOffset: Int, valueOffset: Int,
                            values: UInt64?) throws -> [(key: UInt64, value: UInt64)] {
        if count == 0 { return [] }
        let table = try memory.readStruct(address, count: count * entrySize)
        var splitValues: RemoteBytes?
        if let values { splitValues = try memory.readStruct(values, count: count * 8) }
        var pairs = [(key: UInt64, value: UInt64)]()
        for index in 0..<count {
            let key = try table.pointer(index * entrySize + keyOffset)
            let value = try splitValues?.pointer(index * 8) ?? table.pointer(index * entrySize + valueOffset)
            if key != 0 && value != 0 { pairs.append((key, value)) }
        }
        return pairs
    }

    /// The value for a `str` key, comparing decoded keys (keys that are not strings are skipped).
    public func dictLookup(_ dict: UInt64, key: String) throws -> UInt64? {
        try lookup(in: try dictEntries(dict), key: key)
    }

    /// Finds `key` among dict entries. The keys' headers and first bytes are fetched in
    /// one batched read and compared in place; only keys that might match but are not
    /// compact ASCII (or 2.7 str) are decoded in full.
    func lookup(in entries: [(key: UInt64, value: UInt64)], key: String) throws -> UInt64? {
        let wanted = Array(key.utf8)
        let dataOffset: Int
        switch layout.traits.strings {
        case .pep393: dataOffset = try layout.require(.asciiObjectSize)
        case .python2: dataOffset = try layout.require(.bytesData)
        }
        let prefetched = memory.readMany(entries.map { ($0.key, dataOffset + wanted.count) })
        for (entry, result) in zip(entries, prefetched) {
            switch quickCompare(result, wanted: wanted, dataOffset: dataOffset) {
            case .equal: return entry.value
            case .different: continue
            case .undecided:
                if let name = try? string(entry.key, maximumLength: 256), name == key { return entry.value }
            }
        }
        return nil
    }

    private enum Comparison { case equal, different, undecided }

    /// Compares a prefetched str object with UTF-8 bytes without decoding it.
    private func quickCompare(_ result: Result<[UInt8], MemoryReadError>, wanted: [UInt8], dataOffset: Int) -> Comparison {
        guard case .success(let bytes) = result else { return .undecided }
        let copy = RemoteBytes(address: 0, bytes: bytes)
        switch layout.traits.strings {
        case .pep393:
            let bits = layout.traits.unicodeState
            guard let lengthOffset = layout[.unicodeLength], let stateOffset = layout[.unicodeState],
                  let length = try? copy.i64(lengthOffset), let state = try? copy.u32(stateOffset) else { return .undecided }
            let compact = (state >> bits.compactBit) & 1 == 1
            let ascii = (state >> bits.asciiBit) & 1 == 1
            // For an ASCII key, characters are bytes: a different length cannot match.
            if wanted.allSatisfy({ $0 < 0x80 }) {
                guard length == Int64(wanted.count) else { return .different }
                // Non-compact (a str subclass instance) or non-ASCII: decode to compare.
                guard compact && ascii else { return ascii ? .undecided : .different }
                return bytes[dataOffset..<(dataOffset + wanted.count)].elementsEqual(wanted) ? .equal : .different
            }
            return .undecided
        case .python2:
            // A 2.7 unicode key takes the slow path; a str key is compared here.
            guard let sizeOffset = layout[.varObjectSize], let size = try? copy.i64(sizeOffset) else { return .undecided }
            guard size == Int64(wanted.count) || !wanted.allSatisfy({ $0 < 0x80 }) else { return .different }
            guard size == Int64(wanted.count) else { return .undecided }
            return bytes[dataOffset..<(dataOffset + wanted.count)].elementsEqual(wanted) ? .equal : .undecided
        }
    }

    // MARK: Attributes

    /// Reads an instance attribute from the object's `__dict__` (or 3.11+ managed/inline
    /// values); nil when the object has no such attribute in its instance dict.
    public func attribute(_ object: UInt64, named name: String) throws -> UInt64? {
        let type = try typeOf(object)
        let typeHead: RemoteBytes
        if let cached = typeHeads[type] {
            typeHead = cached
        } else {
            typeHead = try memory.readStruct(type, count: max(try layout.require(.typeDictOffset), try layout.require(.typeFlags)) + 8)
            if typeHeads.count < 4096 { typeHeads[type] = typeHead }
        }
        let flags = try typeHead.u64(try layout.require(.typeFlags))
        let traits = layout.traits
        let managedDict = traits.typeFlags.managedDict
        let inlineValues = traits.typeFlags.inlineValues
        if traits.managedDicts != .dictOffset && flags & managedDict != 0 {
            let pointer = try memory.readPointer(object &+ UInt64(bitPattern: Int64(traits.managedDictOffset)))
            switch traits.managedDicts {
            case .python311:
                if pointer != 0 { return try dictLookup(pointer, key: name) }
                let values = try memory.readPointer(object &+ UInt64(bitPattern: Int64(traits.managedValuesOffset)))
                if values == 0 { return nil }
                return try cachedKeysLookup(type: type, values: values, name: name)
            case .python312:
                if pointer == 0 { return nil }
                if pointer & 1 == 0 { return try dictLookup(pointer, key: name) }
                return try cachedKeysLookup(type: type, values: pointer &+ 1, name: name)
            case .inlineValues:
                if pointer != 0 { return try dictLookup(pointer, key: name) }
                guard flags & inlineValues != 0 else { return nil }
                let basicSize = try typeHead.i64(try layout.require(.typeBasicSize))
                guard basicSize > 0, basicSize < 1 << 20 else { throw ObjectReadError.implausible(what: "tp_basicsize", value: basicSize) }
                let values = object &+ UInt64(basicSize)
                // PyDictValues: capacity, size, embedded, valid (bytes), then the values.
                guard try memory.readInteger(values &+ UInt64(try layout.require(.dictValuesValid)), as: UInt8.self) != 0 else { return nil }
                return try cachedKeysLookup(type: type, values: values, name: name)
            case .dictOffset:
                return nil
            }
        }
        let dictOffset = try typeHead.i64(try layout.require(.typeDictOffset))
        guard dictOffset > 0, dictOffset < 1 << 16 else { return nil }
        let dict = try memory.readPointer(object &+ UInt64(dictOffset))
        if dict == 0 { return nil }
        return try dictLookup(dict, key: name)
    }

    /// Looks `name` up in a heap type's shared keys, taking the value from `values`.
    private func cachedKeysLookup(type: UInt64, values: UInt64, name: String) throws -> UInt64? {
        let keys = try memory.readPointer(type &+ UInt64(try layout.require(.heapTypeCachedKeys)))
        if keys == 0 { return nil }
        return try lookup(in: try keysEntries(keys, values: try splitValuesArray(values)), key: name)
    }

    /// The array of a split dict's values: `ma_values` itself (3.6–3.10), or the array in
    /// the `PyDictValues` it points to (3.11+).
    private func splitValuesArray(_ values: UInt64) throws -> UInt64 {
        layout.traits.dicts == .compact311 ? values &+ UInt64(try layout.require(.dictValuesValues)) : values
    }
}
