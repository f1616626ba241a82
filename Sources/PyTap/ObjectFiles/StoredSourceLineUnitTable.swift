/// What a unit's line table answers, the same way whether it was just built
/// (`SourceLineUnitTable`) or is read in place from its stored words
/// (`StoredSourceLineUnitTable`).
protocol SourceLineUnitLookup: Sendable {
    associatedtype Rows: RandomAccessCollection<DWARFLineProgram.Row> where Rows.Index == Int
    /// Sorted by address.
    var rows: Rows { get }
    func fileName(_ number: Int) -> String?
    /// The scopes holding `address`, in the order the unit gives them.
    func scopes(containing address: UInt64) -> [SourceLineUnitTable.Scope]
}

extension SourceLineUnitLookup {
    /// The functions at an address, innermost inlined call first: the same answer
    /// `SourceLineIndex` gives from a unit read whole.
    func functions(at address: UInt64) -> [SourceFunction] {
        let chain = scopes(containing: address).sorted { $0.depth > $1.depth }
        var location = self.location(at: address)
        var result = [SourceFunction]()
        for scope in chain {
            result.append(SourceFunction(name: scope.name, file: location?.file, line: location?.line))
            if !scope.isInlined { break }
            location = scope.callLine.map { (scope.callFile.flatMap { fileName($0) }, $0) }
        }
        if result.isEmpty, let location {
            return [SourceFunction(name: "??", file: location.file, line: location.line)]
        }
        return result
    }

    /// The file and line at an address (the last row at or below it), nil outside every sequence.
    func location(at address: UInt64) -> (file: String?, line: Int)? {
        guard let index = rows.lastIndex(withKeyAtMost: address, key: { $0.address }), !rows[index].endSequence else { return nil }
        return (fileName(rows[index].file), rows[index].line)
    }
}

/// A stored `SourceLineUnitTable` answered from its words where they are mapped, without
/// decoding it: rows are binary-searched in place and only the scopes holding an address
/// get their names and ranges read (a `dump --native` asks a unit for a few pcs; decoding
/// the whole table of a large unit for them cost more than the rest of the lookup).
/// The stored words are untrusted: they are checked once (counts inside the words, rows in
/// address order, flags and depths in range, nothing left over), and every read after
/// that stays bounds-checked. Sendable: the words are only read, and `owner`
/// (the mapping) lives as long as the table.
struct StoredSourceLineUnitTable: SourceLineUnitLookup, @unchecked Sendable {
    struct Rows: RandomAccessCollection {
        let words: UnsafeRawBufferPointer
        let start: Int
        let count: Int
        var startIndex: Int { 0 }
        var endIndex: Int { count }

        subscript(index: Int) -> DWARFLineProgram.Row {
            // Indices come from searches inside `0..<count`; one outside would be a bug:
            // it reads as an end of sequence (no line), not past the words.
            guard index >= 0 && index < count else { return DWARFLineProgram.Row(address: .max, file: 0, line: 0, endSequence: true) }
            func word(_ field: Int) -> UInt64 {
                UInt64(littleEndian: words.loadUnaligned(fromByteOffset: 8 * (start + 4 * index + field), as: UInt64.self))
            }
            return DWARFLineProgram.Row(address: word(0), file: Int(Int64(bitPattern: word(1))),
                                        line: Int(Int64(bitPattern: word(2))), endSequence: word(3) != 0)
        }
    }

    /// Keeps `words` mapped.
    private let owner: AnyObject
    private let words: UnsafeRawBufferPointer
    private let filesStart: Int, fileCount: Int
    private let scopesStart: Int, scopeCount: Int
    let rows: Rows

    /// nil when `words` are not a table `SourceLineUnitTable.encoded()` gives.
    init?(words: UnsafeRawBufferPointer, owner: AnyObject) {
        self.owner = owner
        self.words = words
        var reader = WordReader(bytes: words)
        do {
            fileCount = try reader.count(wordsEach: 2)
            filesStart = reader.index
            for _ in 0..<fileCount {
                _ = try reader.word()
                try reader.skipString()
            }
            let rowCount = try reader.count(wordsEach: 4)
            rows = Rows(words: words, start: reader.index, count: rowCount)
            for index in rows.indices.dropFirst() where rows[index - 1].address > rows[index].address {
                return nil
            }
            try reader.skip(words: 4 * rowCount)
            scopeCount = try reader.count(wordsEach: 6)
            scopesStart = reader.index
            for _ in 0..<scopeCount { _ = try Self.scopeHeader(&reader) }
        } catch {
            return nil
        }
        guard reader.isAtEnd else { return nil }
    }

    func fileName(_ number: Int) -> String? {
        var reader = WordReader(bytes: words, at: filesStart)
        var found: String?
        // Like the built table's dictionary: the last entry of a number wins.
        for _ in 0..<fileCount {
            guard let entry = try? reader.int() else { return found }
            if entry == number {
                found = try? reader.string()
            } else if (try? reader.skipString()) == nil {
                return found
            }
        }
        return found
    }

    func scopes(containing address: UInt64) -> [SourceLineUnitTable.Scope] {
        var reader = WordReader(bytes: words, at: scopesStart)
        var result = [SourceLineUnitTable.Scope]()
        for _ in 0..<scopeCount {
            guard let header = try? Self.scopeHeader(&reader) else { return result }
            var ranges = WordReader(bytes: words, at: header.rangesStart)
            var holds = false
            for _ in 0..<header.rangeCount {
                guard let low = try? ranges.word(), let high = try? ranges.word() else { return result }
                if address >= low && address < high { holds = true; break }
            }
            guard holds else { continue }
            var name = WordReader(bytes: words, at: header.nameStart)
            ranges = WordReader(bytes: words, at: header.rangesStart)
            var scopeRanges = [SourceLineUnitTable.Range]()
            for _ in 0..<header.rangeCount {
                guard let low = try? ranges.word(), let high = try? ranges.word() else { return result }
                scopeRanges.append(.init(low: low, high: high))
            }
            result.append(SourceLineUnitTable.Scope(
                ranges: scopeRanges, depth: header.depth, name: (try? name.string()) ?? "",
                callFile: header.flags & 2 != 0 ? header.callFile : nil,
                callLine: header.flags & 4 != 0 ? header.callLine : nil, isInlined: header.flags & 1 != 0))
        }
        return result
    }

    private struct ScopeHeader {
        var flags: UInt64
        var depth: Int, callFile: Int, callLine: Int
        var nameStart: Int
        var rangesStart: Int, rangeCount: Int
    }

    /// Reads one scope's fields and moves past its ranges; throws on flags or a depth
    /// `SourceLineUnitTable.encoded()` never writes.
    private static func scopeHeader(_ reader: inout WordReader) throws -> ScopeHeader {
        let flags = try reader.word()
        let depth = try reader.int(), callFile = try reader.int(), callLine = try reader.int()
        let nameStart = reader.index
        try reader.skipString()
        guard flags < 8, (0..<64).contains(depth) else { throw WordReader.Malformed() }
        let rangeCount = try reader.count(wordsEach: 2)
        let rangesStart = reader.index
        try reader.skip(words: 2 * rangeCount)
        return ScopeHeader(flags: flags, depth: depth, callFile: callFile, callLine: callLine, nameStart: nameStart,
                           rangesStart: rangesStart, rangeCount: rangeCount)
    }
}
