/// One line of /proc/PID/maps: a range of the target's address space and what backs it.
public struct MemoryMapping: Equatable, Sendable {
    public var start: UInt64
    public var end: UInt64
    public var readable: Bool
    public var writable: Bool
    public var executable: Bool
    /// Offset in the backing file of `start`.
    public var fileOffset: UInt64
    public var inode: UInt64
    /// Path as the target sees it (inside its mount namespace / chroot); nil for anonymous memory.
    public var path: String?
    /// The file was deleted or replaced after it was mapped.
    public var deleted: Bool

    public var size: UInt64 { end - start }

    public func contains(_ address: UInt64) -> Bool { address >= start && address < end }

    /// Parses the text of /proc/PID/maps; malformed lines are skipped.
    /// Parsed as bytes, not Swift strings: a Python's maps run to hundreds of lines and
    /// `dump` reads them before its first sample.
    public static func parse(_ text: String) -> [MemoryMapping] {
        var text = text
        return text.withUTF8 { bytes in
            var result = [MemoryMapping]()
            var lineStart = 0
            while lineStart < bytes.count {
                let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                if let mapping = MemoryMapping(line: UnsafeBufferPointer(rebasing: bytes[lineStart..<lineEnd])) {
                    result.append(mapping)
                }
                lineStart = lineEnd + 1
            }
            return result
        }
    }

    /// start-end perms offset dev inode [path]; the path may contain spaces.
    init?(line: UnsafeBufferPointer<UInt8>) {
        let space = UInt8(ascii: " ")
        var fields = [Range<Int>]()
        var index = 0
        for _ in 0..<5 {
            while index < line.count && line[index] == space { index += 1 }
            let fieldStart = index
            while index < line.count && line[index] != space { index += 1 }
            fields.append(fieldStart..<index)
        }
        guard let dash = line[fields[0]].firstIndex(of: UInt8(ascii: "-")),
              let start = MemoryMapping.number(line[fields[0].lowerBound..<dash], radix: 16),
              let end = MemoryMapping.number(line[(dash + 1)..<fields[0].upperBound], radix: 16),
              let offset = MemoryMapping.number(line[fields[2]], radix: 16),
              let inode = MemoryMapping.number(line[fields[4]], radix: 10),
              fields[1].count >= 3, !fields[3].isEmpty else { return nil }
        let perms = fields[1].lowerBound
        self.start = start
        self.end = end
        self.readable = line[perms] == UInt8(ascii: "r")
        self.writable = line[perms + 1] == UInt8(ascii: "w")
        self.executable = line[perms + 2] == UInt8(ascii: "x")
        self.fileOffset = offset
        self.inode = inode
        while index < line.count && line[index] == space { index += 1 }
        var path = String(decoding: UnsafeBufferPointer(rebasing: line[index...]), as: UTF8.self)
        var deleted = false
        if path.hasSuffix(" (deleted)") {
            deleted = true
            path.removeLast(" (deleted)".count)
        }
        self.path = path.isEmpty ? nil : path
        self.deleted = deleted
    }

    /// A whole field as an unsigned number; nil when empty, not a number or too large.
    private static func number(_ digits: Slice<UnsafeBufferPointer<UInt8>>, radix: UInt64) -> UInt64? {
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            let digit: UInt64
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt64(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt64(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
            guard digit < radix else { return nil }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: radix)
            let (sum, carry) = shifted.addingReportingOverflow(digit)
            guard !overflow, !carry else { return nil }
            value = sum
        }
        return value
    }

    public init(start: UInt64, end: UInt64, readable: Bool = true, writable: Bool = false, executable: Bool = false,
                fileOffset: UInt64 = 0, inode: UInt64 = 0, path: String? = nil, deleted: Bool = false) {
        self.start = start
        self.end = end
        self.readable = readable
        self.writable = writable
        self.executable = executable
        self.fileOffset = fileOffset
        self.inode = inode
        self.path = path
        self.deleted = deleted
    }

    /// Whether this maps a file (not [heap], [stack], [vdso], anonymous memory).
    public var isFile: Bool {
        guard let path else { return false }
        return path.hasPrefix("/")
    }

    /// The kernel's virtual shared object, mapped into every process without a file: its
    /// ELF image is in the process's memory (`clock_gettime`, `gettimeofday`, `time` run there).
    public static let vdsoName = "[vdso]"
    /// The vDSO is 2 pages on x86_64 kernels of today; a mapping past this is not one.
    public static let vdsoSizeLimit: UInt64 = 1 << 20

    /// Whether this maps an object file whose code can be on a stack: a file, or the vDSO.
    public var holdsObject: Bool { isFile || path == MemoryMapping.vdsoName }
}
