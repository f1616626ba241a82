import Glibc

/// The framing the cache files of an object file share (`SymbolIndexFile`,
/// `DWARFUnitIndexFile`, `SourceLineUnitTableFile`): a name from the build-id, and a text
/// header whose lines say what the file was made from (format, build-id, the files'
/// identities) and end with the counts the rest of the file is sized by; NUL-terminated
/// and padded to 16 bytes, so what follows stays aligned in the mapping. A stored file is
/// taken only when its header is exactly the one its object file gives now.
enum CacheFileHeader {
    /// `<build-id>-<kind>`; nil for a file without a build-id.
    static func fileName(of elf: ELFFile, kind: String) -> String? {
        guard let id = elf.buildIDHex, !id.isEmpty else { return nil }
        return id + "-" + kind
    }

    /// The header bytes of `text` (lines, each ending in a newline).
    static func bytes(_ text: String) -> [UInt8] {
        var bytes = Array(text.utf8)
        bytes.append(0)
        while bytes.count % 16 != 0 { bytes.append(0) }
        return bytes
    }

    /// The counts on a stored header's last line (space-separated, none negative); nil when
    /// the file has no such header.
    static func storedCounts(in bytes: UnsafeRawBufferPointer) -> [Int]? {
        guard let end = bytes.prefix(4096).firstIndex(of: 0) else { return nil }
        let lines = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<end]), as: UTF8.self).split(separator: "\n")
        guard let fields = lines.last?.split(separator: " ") else { return nil }
        let counts = fields.compactMap { Int($0) }
        guard counts.count == fields.count, counts.allSatisfy({ $0 >= 0 }) else { return nil }
        return counts
    }

    /// Size and modification time of a file: a rebuilt file with the same build-id (or a
    /// debug file installed, removed or replaced) is not taken for the one indexed.
    static func identity(_ elf: ELFFile?) -> String {
        guard let elf else { return "-" }
        var info = stat()
        guard stat(elf.path, &info) == 0 else { return "?" }
        return "\(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }
}

/// A cache file's body of little-endian 64-bit words after its `CacheFileHeader`, followed
/// by their checksum (`DWARFUnitIndexFile`, `SourceLineUnitTableFile`): FNV-1a over the
/// words in four interleaved lanes (word i goes to lane i mod 4), the lanes then folded in
/// with the count. Four lanes let the multiplies overlap: a warm `dump --native` checks
/// several MiB of tables, and one serial FNV chain was ~9% of its CPU.
enum ChecksummedWords {
    private static let basis: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x100_0000_01b3

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let count = bytes.count / 8
        func word(_ index: Int) -> UInt64 {
            UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self))
        }
        var lane0 = basis, lane1 = basis ^ 1, lane2 = basis ^ 2, lane3 = basis ^ 3
        var index = 0
        while index + 4 <= count {
            lane0 = (lane0 ^ word(index)) &* prime
            lane1 = (lane1 ^ word(index + 1)) &* prime
            lane2 = (lane2 ^ word(index + 2)) &* prime
            lane3 = (lane3 ^ word(index + 3)) &* prime
            index += 4
        }
        while index < count {
            lane0 = (lane0 ^ word(index)) &* prime
            index += 1
        }
        var hash = basis
        for value in [lane0, lane1, lane2, lane3, UInt64(count)] { hash = (hash ^ value) &* prime }
        return hash
    }

    /// The `count` words of a stored file, nil unless its size is exactly `header`, the
    /// words and the checksum, it starts with `header` and the checksum matches.
    static func words(in bytes: UnsafeRawBufferPointer, header: [UInt8], count: Int) -> UnsafeRawBufferPointer? {
        guard count < bytes.count / 8, bytes.count == header.count + 8 * (count + 1), bytes.starts(with: header) else { return nil }
        let words = UnsafeRawBufferPointer(rebasing: bytes[header.count ..< header.count + 8 * count])
        let stored = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: header.count + 8 * count, as: UInt64.self))
        guard checksum(words) == stored else { return nil }
        return words
    }

    /// Writes `header`, `words` and their checksum as `name` (best effort).
    static func store(_ words: [UInt64], header: [UInt8], as name: String, in directory: CacheDirectory) {
        var body = words
        #if !_endian(little)
        body = body.map { $0.littleEndian }
        #endif
        body.append((body.withUnsafeBytes { checksum($0) }).littleEndian)
        header.withUnsafeBytes { header in
            body.withUnsafeBytes { words in directory.store(name, parts: [header, words]) }
        }
    }
}
