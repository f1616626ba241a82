/// One compile unit's source lines and inlined calls, read whole once and then answered
/// without its DWARF: the line rows in address order (binary-searched), the file table, and
/// every function and inlined call with its ranges, nesting depth, call site and name
/// (resolved when the table is built). `SourceLineIndex` builds one per unit a lookup
/// hits and keeps it on disk (`SourceLineUnitTableFile`), so a later pytap answers any
/// address of that unit without decoding DIEs or running the line program.
struct SourceLineUnitTable: Equatable, SourceLineUnitLookup {
    struct Scope: Equatable {
        var ranges: [Range]
        var depth: Int
        var name: String
        var callFile: Int?
        var callLine: Int?
        var isInlined: Bool

        func contains(_ address: UInt64) -> Bool { ranges.contains { address >= $0.low && address < $0.high } }
    }

    struct Range: Equatable {
        var low: UInt64
        var high: UInt64
    }

    /// Sorted by address (`DWARFLineProgram.runIntoRows`); empty without a line program.
    var rows: [DWARFLineProgram.Row]
    var files: [Int: String]
    /// In the order the unit's DIEs give them (lookups sort the ones holding an address by depth).
    var scopes: [Scope]

    func fileName(_ number: Int) -> String? { files[number] }

    func scopes(containing address: UInt64) -> [Scope] { scopes.filter { $0.contains(address) } }

    // MARK: Encoding

    /// The table as little-endian 64-bit words (what `SourceLineUnitTableFile` stores).
    func encoded() -> [UInt64] {
        var writer = WordWriter()
        writer.append(files.count)
        for (number, path) in files.sorted(by: { $0.key < $1.key }) {
            writer.append(number)
            writer.append(path)
        }
        writer.append(rows.count)
        for row in rows {
            writer.words += [row.address, UInt64(bitPattern: Int64(row.file)), UInt64(bitPattern: Int64(row.line)),
                             row.endSequence ? 1 : 0]
        }
        writer.append(scopes.count)
        for scope in scopes {
            let flags: UInt64 = (scope.isInlined ? 1 : 0) | (scope.callFile != nil ? 2 : 0) | (scope.callLine != nil ? 4 : 0)
            writer.words += [flags]
            writer.append(scope.depth)
            writer.append(scope.callFile ?? 0)
            writer.append(scope.callLine ?? 0)
            writer.append(scope.name)
            writer.append(scope.ranges.count)
            for range in scope.ranges { writer.words += [range.low, range.high] }
        }
        return writer.words
    }

    init(rows: [DWARFLineProgram.Row], files: [Int: String], scopes: [Scope]) {
        self.rows = rows
        self.files = files
        self.scopes = scopes
    }
}

/// Appends integers and strings (length, then UTF-8 bytes packed 8 to a word) as words.
struct WordWriter {
    var words = [UInt64]()

    mutating func append(_ value: Int) { words.append(UInt64(bitPattern: Int64(value))) }

    mutating func append(_ text: String) {
        let bytes = Array(text.utf8)
        words.append(UInt64(bytes.count))
        var index = 0
        while index < bytes.count {
            var word: UInt64 = 0
            for shift in 0..<min(8, bytes.count - index) { word |= UInt64(bytes[index + shift]) << (8 * shift) }
            words.append(word)
            index += 8
        }
    }
}

/// Reads what `WordWriter` wrote, bounds-checked: anything past the end or a count larger
/// than the words left throws.
struct WordReader {
    struct Malformed: Error {}
    let bytes: UnsafeRawBufferPointer
    private(set) var index = 0

    init(bytes: UnsafeRawBufferPointer, at index: Int = 0) {
        self.bytes = bytes
        self.index = index
    }

    var wordsLeft: Int { bytes.count / 8 - index }
    var isAtEnd: Bool { wordsLeft == 0 }

    mutating func word() throws -> UInt64 {
        guard wordsLeft > 0 else { throw Malformed() }
        defer { index += 1 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self))
    }

    mutating func int() throws -> Int { Int(Int64(bitPattern: try word())) }

    /// A count of items at least `wordsEach` words long that fit in what is left.
    mutating func count(wordsEach: Int) throws -> Int {
        let value = try word()
        guard value <= UInt64(wordsLeft / max(wordsEach, 1)) else { throw Malformed() }
        return Int(value)
    }

    mutating func string() throws -> String {
        let start = 8 * index + 8
        let length = try skipString()
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]), as: UTF8.self)
    }

    /// Moves past a string; its length in bytes.
    @discardableResult
    mutating func skipString() throws -> Int {
        let length = try word()
        guard length <= UInt64(wordsLeft) * 8 else { throw Malformed() }
        index += (Int(length) + 7) / 8
        return Int(length)
    }

    mutating func skip(words count: Int) throws {
        guard count >= 0, count <= wordsLeft else { throw Malformed() }
        index += count
    }
}
