/// Maps a bytecode offset to a source line, for each of CPython's line-table formats.
/// Decoded once per code object into ranges, then looked up by binary search.
public struct LineTable: Sendable, Equatable {
    /// Half-open bytecode byte ranges [start, end) with their line (nil: no line).
    public struct Range: Sendable, Equatable {
        public var start: Int
        public var end: Int
        public var line: Int?
    }

    public let firstLine: Int
    public let ranges: [Range]
    /// For lnotab formats: the line for offsets past the last entry.
    private let trailingLine: Int?

    /// Longest table pytap decodes; a longer one is garbage.
    public static let maximumBytes = 1 << 20

    public init(format: VersionTraits.LineTableFormat, bytes: [UInt8], firstLine: Int) {
        self.firstLine = firstLine
        switch format {
        case .lnotabUnsigned, .lnotabSigned:
            (ranges, trailingLine) = LineTable.decodeLnotab(bytes, firstLine: firstLine, signed: format == .lnotabSigned)
        case .lineTable310:
            ranges = LineTable.decodeLineTable310(bytes, firstLine: firstLine)
            trailingLine = nil
        case .locationTable311:
            ranges = LineTable.decodeLocationTable(bytes, firstLine: firstLine)
            trailingLine = nil
        }
    }

    /// The line of the instruction at byte offset `offset` (negative: not started yet,
    /// which CPython reports as the first line).
    public func line(atByteOffset offset: Int) -> Int? {
        if offset < 0 { return firstLine }
        var low = 0, high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].end <= offset { low = mid + 1 } else { high = mid }
        }
        if low < ranges.count, ranges[low].start <= offset { return ranges[low].line }
        return trailingLine
    }

    /// co_lnotab (≤3.9): pairs (byte increment, line increment). CPython's PyCode_Addr2Line
    /// adds address increments until passing the offset; the line is what was reached.
    static func decodeLnotab(_ bytes: [UInt8], firstLine: Int, signed: Bool) -> ([Range], Int?) {
        var ranges = [Range]()
        var line = firstLine
        var address = 0
        var start = 0
        var index = 0
        while index + 1 < bytes.count {
            let addressIncrement = Int(bytes[index])
            let lineIncrement = signed ? Int(Int8(bitPattern: bytes[index + 1])) : Int(bytes[index + 1])
            index += 2
            if addressIncrement > 0 {
                ranges.append(Range(start: start, end: address + addressIncrement, line: line))
                address += addressIncrement
                start = address
            }
            line &+= lineIncrement
        }
        return (ranges, line)
    }

    /// 3.10 co_linetable: pairs (unsigned byte delta, signed line delta), -128 = no line.
    static func decodeLineTable310(_ bytes: [UInt8], firstLine: Int) -> [Range] {
        var ranges = [Range]()
        var line = firstLine
        var end = 0
        var index = 0
        while index + 1 < bytes.count {
            let start = end
            end &+= Int(bytes[index])
            let delta = Int8(bitPattern: bytes[index + 1])
            index += 2
            var rangeLine: Int? = nil
            if delta != -128 {
                line &+= Int(delta)
                rangeLine = line
            }
            if end > start { ranges.append(Range(start: start, end: end, line: rangeLine)) }
        }
        return ranges
    }

    /// 3.11+ location table (Objects/locations.md): each entry starts with a byte with the
    /// high bit set: bits 3–6 a code, bits 0–2 the length in code units minus one.
    static func decodeLocationTable(_ bytes: [UInt8], firstLine: Int) -> [Range] {
        var ranges = [Range]()
        var line = firstLine
        var end = 0
        var index = 0
        while index < bytes.count {
            let header = bytes[index]
            guard header & 0x80 != 0 else { index += 1; continue }
            let code = Int((header >> 3) & 15)
            let length = (Int(header & 7) + 1) * 2
            var delta = 0
            switch code {
            case 13, 14: delta = LineTable.signedVarint(bytes, at: index + 1)
            case 10, 11, 12: delta = code - 10
            default: delta = 0
            }
            // Garbage tables may claim absurd deltas: wrap rather than trap.
            line &+= delta
            let start = end
            end &+= length
            ranges.append(Range(start: start, end: end, line: code == 15 ? nil : line))
            index += 1
            while index < bytes.count && bytes[index] & 0x80 == 0 { index += 1 }
        }
        return ranges
    }

    static func varint(_ bytes: [UInt8], at position: Int) -> Int {
        var index = position
        guard index < bytes.count else { return 0 }
        var byte = Int(bytes[index])
        var value = byte & 63
        var shift = 0
        while byte & 64 != 0 && shift < 56 {
            index += 1
            guard index < bytes.count else { break }
            byte = Int(bytes[index])
            shift += 6
            value |= (byte & 63) << shift
        }
        return value
    }

    static func signedVarint(_ bytes: [UInt8], at position: Int) -> Int {
        let value = varint(bytes, at: position)
        return value & 1 != 0 ? -(value >> 1) : value >> 1
    }
}
