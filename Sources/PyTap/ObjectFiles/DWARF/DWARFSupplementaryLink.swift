/// The link from a dwz-compressed debug file to its supplementary file, which holds the
/// DIEs and strings shared between packages (DW_FORM_GNU_ref_alt / GNU_strp_alt, or
/// DWARF 5 ref_sup / strp_sup). Read from .gnu_debugaltlink (file name, NUL, build-id) or
/// .debug_sup (version, is_supplementary, file name, checksum).
struct DWARFSupplementaryLink: Equatable {
    var name: String
    var buildID: [UInt8]

    init(name: String, buildID: [UInt8]) {
        self.name = name
        self.buildID = buildID
    }

    init?(elf: ELFFile) {
        if let section = elf.section(named: ".gnu_debugaltlink"), let bytes = try? elf.contents(of: section),
           let end = bytes.firstIndex(of: 0), end > 0 {
            self.init(name: String(decoding: bytes[..<end], as: UTF8.self), buildID: Array(bytes[(end + 1)...]))
            return
        }
        if let section = elf.section(named: ".debug_sup"), let bytes = try? elf.contents(of: section),
           bytes.count > 4, bytes[2] == 0 /* is_supplementary: this file is not one */,
           let end = bytes[3...].firstIndex(of: 0), end > 3 {
            // The checksum (ULEB length, bytes) is the supplementary file's build-id in practice.
            var position = end + 1
            var length = 0, shift = 0
            while position < bytes.count, shift < 28 {
                length |= Int(bytes[position] & 0x7f) << shift
                shift += 7
                position += 1
                if bytes[position - 1] & 0x80 == 0 { break }
            }
            let checksum = position + length <= bytes.count ? Array(bytes[position..<(position + length)]) : []
            self.init(name: String(decoding: bytes[3..<end], as: UTF8.self), buildID: checksum)
            return
        }
        return nil
    }

    var buildIDHex: String { buildID.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

    /// Where to look, in order: the name as given (absolute, or relative to the debug file's
    /// folder), then under /usr/lib/debug/.dwz/ and by build-id. When the debug file is inside
    /// a chroot (its path has a /usr/lib/debug/ part), that root is tried before the host's.
    func candidatePaths(forFileAt path: String) -> [String] {
        var roots = [""]
        if let range = path.firstRange(of: "/usr/lib/debug/") {
            let root = String(path[..<range.lowerBound])
            if !root.isEmpty { roots.insert(root, at: 0) }
        }
        var paths: [String] = []
        if name.hasPrefix("/") {
            for root in roots { paths.append(root + name) }
        } else {
            let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            paths.append((directory.isEmpty ? "." : directory) + "/" + name)
        }
        let tail: String
        if let range = name.firstRange(of: ".dwz/") {
            tail = String(name[range.upperBound...])
        } else {
            tail = String(name.split(separator: "/").last ?? Substring(name))
        }
        for root in roots { paths.append(root + "/usr/lib/debug/.dwz/" + tail) }
        let hex = buildIDHex
        if hex.count > 2 {
            for root in roots {
                paths.append(root + "/usr/lib/debug/.build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug")
            }
        }
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }

    /// The first candidate that is an ELF file with debug info and, when both are known, the expected build-id.
    func locate(forFileAt path: String) -> ELFFile? {
        for candidate in candidatePaths(forFileAt: path) where candidate != path {
            guard let file = try? ELFFile(path: candidate), file.hasDebugInfo else { continue }
            if !buildID.isEmpty, let have = file.buildID, have != buildID { continue }
            return file
        }
        return nil
    }
}
