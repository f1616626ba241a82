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
    public static func parse(_ text: String) -> [MemoryMapping] {
        var result = [MemoryMapping]()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let mapping = MemoryMapping(line: line) { result.append(mapping) }
        }
        return result
    }

    init?(line: Substring) {
        // start-end perms offset dev inode [path]; the path may contain spaces.
        var fields = [Substring]()
        var rest = line[...]
        for _ in 0..<5 {
            rest = rest.drop { $0 == " " }
            guard let space = rest.firstIndex(of: " ") else {
                fields.append(rest)
                rest = ""
                continue
            }
            fields.append(rest[..<space])
            rest = rest[space...]
        }
        guard fields.count == 5 else { return nil }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
              let offset = UInt64(fields[2], radix: 16), let inode = UInt64(fields[4]) else { return nil }
        let perms = Array(fields[1].utf8)
        guard perms.count >= 3 else { return nil }
        self.start = start
        self.end = end
        self.readable = perms[0] == UInt8(ascii: "r")
        self.writable = perms[1] == UInt8(ascii: "w")
        self.executable = perms[2] == UInt8(ascii: "x")
        self.fileOffset = offset
        self.inode = inode
        var path = String(rest.drop { $0 == " " })
        var deleted = false
        if path.hasSuffix(" (deleted)") {
            deleted = true
            path.removeLast(" (deleted)".count)
        }
        self.path = path.isEmpty ? nil : path
        self.deleted = deleted
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
}
