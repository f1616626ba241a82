/// One compile unit's `.debug_line` program (DWARF 2–5), run into rows: the file table and
/// the (address, file, line) rows, sorted by address, sequence ends included. Made with
/// `rows: false` it reads only the header, and `streamedLocation(at:)` runs the program for
/// one address without keeping rows (a few lookups in a large unit); `runIntoRows()` fills
/// the rows later.
struct DWARFLineProgram {
    struct Row: Equatable {
        var address: UInt64
        var file: Int
        var line: Int
        var endSequence: Bool
    }

    /// Full paths, indexed as the program's file numbers are (DWARF 5 from 0, older from 1).
    var files: [Int: String] = [:]
    var rows: [Row] = []
    private(set) var hasRows = true

    /// What running the program needs, from its header.
    private struct Machine {
        var section: DWARFSectionData
        var programStart: Int
        var end: Int
        var addressSize: Int
        var minimumInstructionLength: UInt64
        var lineBase: Int
        var lineRange: Int
        var opcodeBase: Int
        var standardLengths: [Int]
    }
    private var machine: Machine?

    /// Rows run at most (a malformed program must not run away).
    static let maximumRows = 4_000_000

    /// A table of rows already in address order (tests).
    init(sortedRows: [Row]) {
        rows = sortedRows
    }

    /// - Parameters: `strings` reads a string-class value of a header entry (strp, line_strp).
    init(section: DWARFSectionData, offset: Int, addressSize: Int, compilationDirectory: String?, rows runRows: Bool = true,
         strings: (_ form: UInt64, _ value: UInt64) throws -> String?) throws {
        var cursor = section.cursor(at: offset)
        var length = UInt64(try cursor.u32())
        var offsetSize = 4
        if length == 0xffff_ffff {
            length = try cursor.u64()
            offsetSize = 8
        }
        guard length <= UInt64(cursor.remaining) else { throw DWARFError.truncated(section: section.kind.name, offset: offset) }
        let end = cursor.offset + Int(length)
        cursor = section.cursor(at: cursor.offset, end: end)
        let version = Int(try cursor.u16())
        guard (2...5).contains(version) else { throw DWARFError.malformed(".debug_line version \(version)") }
        var addressSize = addressSize
        if version >= 5 {
            addressSize = Int(try cursor.u8())
            _ = try cursor.u8()  // segment selector size
        }
        let headerLength = try cursor.sectionOffset(size: offsetSize)
        guard headerLength <= UInt64(cursor.remaining) else { throw DWARFError.truncated(section: section.kind.name, offset: offset) }
        let programStart = cursor.offset + Int(headerLength)
        let minimumInstructionLength = UInt64(try cursor.u8())
        if version >= 4 { _ = try cursor.u8() }  // maximum operations per instruction (VLIW only)
        let defaultIsStatement = try cursor.u8() != 0
        _ = defaultIsStatement
        let lineBase = Int(Int8(bitPattern: try cursor.u8()))
        let lineRange = Int(try cursor.u8())
        let opcodeBase = Int(try cursor.u8())
        guard lineRange > 0, opcodeBase > 0 else { throw DWARFError.malformed(".debug_line line_range 0 or opcode_base 0") }
        var standardLengths = [Int]()
        for _ in 1..<opcodeBase { standardLengths.append(Int(try cursor.u8())) }

        func joined(_ directory: String?, _ name: String) -> String {
            if name.hasPrefix("/") { return name }
            guard var directory, !directory.isEmpty else { return name }
            if !directory.hasPrefix("/"), let base = compilationDirectory, !base.isEmpty { directory = base + "/" + directory }
            return directory + "/" + name
        }
        if version >= 5 {
            let unit = DWARFUnit(object: 0, section: .info, offset: 0, end: 0, version: version, unitType: 1,
                                 addressSize: addressSize, offsetSize: offsetSize, abbreviationOffset: 0, firstDIEOffset: 0)
            func entries() throws -> [[UInt64: String]] {
                var format = [(UInt64, UInt64)]()
                for _ in 0..<Int(try cursor.u8()) { format.append((try cursor.uleb128(), try cursor.uleb128())) }
                let count = try cursor.uleb128()
                guard count <= UInt64(cursor.remaining) else { throw DWARFError.malformed(".debug_line claims \(count) entries") }
                var result = [[UInt64: String]]()
                for _ in 0..<Int(count) {
                    var entry = [UInt64: String]()
                    for (content, form) in format {
                        let spec = DWARFAttributeSpec(attribute: content, form: form, implicitConst: 0, fixedSize: 0)
                        let value = try DWARFForms.read(spec, &cursor, unit)
                        switch form {
                        case DWARFConstant.Form.string:
                            let bytes = section.bytes[value.dataOffset..<(value.dataOffset + Int(value.value))]
                            entry[content] = String(decoding: UnsafeRawBufferPointer(rebasing: bytes), as: UTF8.self)
                        case DWARFConstant.Form.strp, DWARFConstant.Form.lineStrp, DWARFConstant.Form.strx,
                             DWARFConstant.Form.strx1, DWARFConstant.Form.strx2, DWARFConstant.Form.strx4:
                            entry[content] = try strings(form, value.value)
                        default:
                            entry[content] = String(value.value)
                        }
                    }
                    result.append(entry)
                }
                return result
            }
            let path: UInt64 = 1, directoryIndex: UInt64 = 2
            let directories = try entries().map { $0[path] }
            for (index, entry) in try entries().enumerated() {
                guard let name = entry[path] else { continue }
                let directory = entry[directoryIndex].flatMap(Int.init).flatMap { $0 < directories.count ? directories[$0] : nil }
                files[index] = joined(directory ?? nil, name)
            }
        } else {
            var directories = [compilationDirectory]
            while true {
                let start = cursor.offset
                try cursor.skipCString()
                if cursor.offset - start == 1 { break }
                directories.append(String(decoding: UnsafeRawBufferPointer(rebasing: section.bytes[start..<(cursor.offset - 1)]), as: UTF8.self))
            }
            var index = 1
            while true {
                let start = cursor.offset
                try cursor.skipCString()
                if cursor.offset - start == 1 { break }
                let name = String(decoding: UnsafeRawBufferPointer(rebasing: section.bytes[start..<(cursor.offset - 1)]), as: UTF8.self)
                let directory = Int(try cursor.uleb128())
                _ = try cursor.uleb128()
                _ = try cursor.uleb128()
                files[index] = joined(directory < directories.count ? directories[directory] : nil, name)
                index += 1
            }
        }

        machine = Machine(section: section, programStart: programStart, end: end, addressSize: addressSize,
                          minimumInstructionLength: minimumInstructionLength, lineBase: lineBase, lineRange: lineRange,
                          opcodeBase: opcodeBase, standardLengths: standardLengths)
        hasRows = false
        if runRows { try runIntoRows() }
    }

    /// Runs the program into `rows`, sorted by address (once).
    mutating func runIntoRows() throws {
        guard !hasRows, let machine else { return }
        var rows = [Row]()
        try DWARFLineProgram.run(machine) { row in
            guard rows.count < DWARFLineProgram.maximumRows else { throw DWARFError.malformed(".debug_line program too long") }
            rows.append(row)
        }
        self.rows = DWARFLineProgram.sortedBySequence(rows)
        hasRows = true
    }

    /// The file and line at an address, found by running the program without keeping its
    /// rows: the last row at or below the address in the first sequence that holds it (what
    /// the sorted rows give when sequences do not overlap). nil outside every sequence.
    func streamedLocation(at address: UInt64) -> (file: String?, line: Int)? {
        if hasRows { return location(at: address) }
        guard let machine else { return nil }
        var best: Row?
        var lowest = UInt64.max
        var found: Row?
        var count = 0
        struct Done: Error {}
        do {
            try DWARFLineProgram.run(machine) { row in
                count += 1
                guard count < DWARFLineProgram.maximumRows else { throw DWARFError.malformed(".debug_line program too long") }
                if row.endSequence {
                    if let candidate = best, lowest <= address, address < row.address {
                        found = candidate
                        throw Done()
                    }
                    best = nil
                    lowest = .max
                    return
                }
                lowest = min(lowest, row.address)
                if row.address <= address, row.address >= (best?.address ?? 0) { best = row }
            }
            // An unterminated last sequence.
            found = best
        } catch is Done {
        } catch {
            return nil
        }
        return found.map { (files[$0.file], $0.line) }
    }

    /// The state machine: every row in program order.
    private static func run(_ machine: Machine, _ emit: (Row) throws -> Void) throws {
        var cursor = machine.section.cursor(at: machine.programStart, end: machine.end)
        let opcodeBase = machine.opcodeBase, lineRange = machine.lineRange, lineBase = machine.lineBase
        let minimumInstructionLength = machine.minimumInstructionLength, standardLengths = machine.standardLengths
        var address: UInt64 = 0, file = 1, line = 1
        func reset() { address = 0; file = 1; line = 1 }
        while !cursor.isAtEnd {
            let opcode = Int(try cursor.u8())
            if opcode >= opcodeBase {
                let adjusted = opcode - opcodeBase
                address &+= UInt64(adjusted / lineRange) &* minimumInstructionLength
                line += lineBase + adjusted % lineRange
                try emit(Row(address: address, file: file, line: line, endSequence: false))
                continue
            }
            switch opcode {
            case 0:
                let length = try cursor.uleb128()
                guard length > 0, length <= UInt64(cursor.remaining) else { throw DWARFError.malformed(".debug_line extended opcode length \(length)") }
                let next = cursor.offset + Int(length)
                switch try cursor.u8() {
                case 1:
                    try emit(Row(address: address, file: file, line: line, endSequence: true))
                    reset()
                case 2: address = try cursor.unsigned(size: machine.addressSize)
                default: break
                }
                cursor.offset = next
            case 1: try emit(Row(address: address, file: file, line: line, endSequence: false))
            case 2: address &+= try cursor.uleb128() &* minimumInstructionLength
            case 3: line += Int(truncatingIfNeeded: try cursor.sleb128())
            case 4: file = Int(truncatingIfNeeded: try cursor.uleb128())
            case 8: address &+= UInt64((255 - opcodeBase) / lineRange) &* minimumInstructionLength
            case 9: address &+= UInt64(try cursor.u16())
            default:
                // set_column, negate_stmt, basic_block, prologue_end, epilogue_begin, set_isa and
                // unknown ones: skip their ULEB128 operands.
                for _ in 0..<(opcode - 1 < standardLengths.count ? standardLengths[opcode - 1] : 0) { _ = try cursor.uleb128() }
            }
        }
    }

    /// Rows by address, as `sortedByRow` puts them for every lookup, without sorting every
    /// row: compilers write each sequence in address order and sequences that do not
    /// overlap, so the sequences are sorted by start and their rows kept in order. Sequences
    /// that overlap or tie (a linker's discarded functions left at address 0, a malformed
    /// program) form a cluster whose rows are sorted one by one.
    static func sortedBySequence(_ rows: [Row]) -> [Row] {
        struct Sequence {
            var rows: Range<Int>
            var start: UInt64
            var highest: UInt64
            /// Rows in address order, and no end at the address of the row before it.
            var ordered: Bool
            /// A row that is not an end at the highest address.
            var openAtHighest: Bool
        }
        var sequences = [Sequence]()
        var first = 0
        var ordered = true
        var highest: UInt64 = 0
        for index in rows.indices {
            let row = rows[index]
            if index > first {
                let previous = rows[index - 1].address
                if row.address < previous || (row.endSequence && row.address == previous) { ordered = false }
            }
            highest = index == first ? row.address : max(highest, row.address)
            if row.endSequence || index == rows.count - 1 {
                // In address order, only an unterminated last sequence ends on an open row.
                let open = ordered ? !row.endSequence
                    : rows[first ... index].contains { !$0.endSequence && $0.address == highest }
                sequences.append(Sequence(rows: first ..< index + 1, start: rows[first].address, highest: highest,
                                          ordered: ordered, openAtHighest: open))
                first = index + 1
                ordered = true
            }
        }
        sequences.sort { $0.start != $1.start ? $0.start < $1.start : $0.rows.lowerBound < $1.rows.lowerBound }
        var sorted = [Row]()
        sorted.reserveCapacity(rows.count)
        var cluster = [Sequence]()
        func flush() {
            if cluster.count == 1 && cluster[0].ordered {
                sorted.append(contentsOf: rows[cluster[0].rows])
            } else if !cluster.isEmpty {
                let members = cluster.sorted { $0.rows.lowerBound < $1.rows.lowerBound }
                sorted.append(contentsOf: sortedByRow(members.flatMap { rows[$0.rows] }))
            }
            cluster.removeAll(keepingCapacity: true)
        }
        var clusterHighest: UInt64 = 0, clusterOpenAtHighest = false, previousStart: UInt64?
        for sequence in sequences {
            let joins = !cluster.isEmpty && (sequence.start < clusterHighest || sequence.start == previousStart
                                             || (sequence.start == clusterHighest && clusterOpenAtHighest))
            if !joins {
                flush()
                clusterHighest = sequence.highest
                clusterOpenAtHighest = sequence.openAtHighest
            } else if sequence.highest > clusterHighest {
                clusterHighest = sequence.highest
                clusterOpenAtHighest = sequence.openAtHighest
            } else if sequence.highest == clusterHighest {
                clusterOpenAtHighest = clusterOpenAtHighest || sequence.openAtHighest
            }
            cluster.append(sequence)
            previousStart = sequence.start
        }
        flush()
        return sorted
    }

    /// Rows by address; at one address a sequence's end sorts before another's start, and
    /// rows keep their program order.
    static func sortedByRow(_ rows: [Row]) -> [Row] {
        rows.enumerated().sorted { left, right in
            if left.element.address != right.element.address { return left.element.address < right.element.address }
            if left.element.endSequence != right.element.endSequence { return left.element.endSequence }
            return left.offset < right.offset
        }.map(\.element)
    }

    /// The file and line at an address, nil outside every sequence.
    func location(at address: UInt64) -> (file: String?, line: Int)? {
        guard let index = rows.lastIndex(withKeyAtMost: address, key: { $0.address }) else { return nil }
        let row = rows[index]
        if row.endSequence { return nil }
        return (files[row.file], row.line)
    }
}
