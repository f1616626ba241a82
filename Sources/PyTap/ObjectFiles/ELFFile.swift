import CLinux

/// A section header of an ELF file (Elf64_Shdr).
public struct ELFSection: Sendable {
    public var name: String
    public var type: UInt32
    public var flags: UInt64
    public var address: UInt64
    public var offset: UInt64
    public var size: UInt64
    public var link: UInt32
    public var info: UInt32
    public var alignment: UInt64
    public var entrySize: UInt64

    public static let typeNoBits: UInt32 = 8
    public static let typeSymtab: UInt32 = 2
    public static let typeDynsym: UInt32 = 11
    public static let flagCompressed: UInt64 = 0x800
}

/// A program header of an ELF file (Elf64_Phdr).
public struct ELFProgramHeader: Sendable {
    public var type: UInt32
    public var flags: UInt32
    public var offset: UInt64
    public var virtualAddress: UInt64
    public var fileSize: UInt64
    public var memorySize: UInt64
    public var alignment: UInt64

    public static let typeLoad: UInt32 = 1
    public static let typeNote: UInt32 = 4
}

/// An ELF symbol (Elf64_Sym) with its name resolved.
public struct ELFSymbol: Sendable, Equatable {
    public var name: String
    public var value: UInt64
    public var size: UInt64
    public var type: UInt8
    public var binding: UInt8
    public var sectionIndex: UInt16

    public init(name: String, value: UInt64, size: UInt64, type: UInt8, binding: UInt8, sectionIndex: UInt16) {
        self.name = name
        self.value = value
        self.size = size
        self.type = type
        self.binding = binding
        self.sectionIndex = sectionIndex
    }

    public static let typeObject: UInt8 = 1
    public static let typeFunction: UInt8 = 2
    /// STT_GNU_IFUNC: a function whose address a resolver picks at load time (glibc's memcpy).
    public static let typeIndirectFunction: UInt8 = 10
    public var isDefined: Bool { sectionIndex != 0 }
}

/// A 64-bit little-endian ELF file, memory-mapped: headers, sections (inflating
/// SHF_COMPRESSED ones), symbols, build-id and .gnu_debuglink. Every table read is
/// bounds-checked against the file size.
public final class ELFFile: @unchecked Sendable {
    public let path: String
    public let file: MappedFile
    /// ET_EXEC (2) for non-PIE executables, ET_DYN (3) for PIE executables and shared libraries.
    public let fileType: UInt16
    public let machine: UInt16
    public let sections: [ELFSection]
    public let programHeaders: [ELFProgramHeader]
    private var inflated: [String: [UInt8]] = [:]

    public static let machineX86_64: UInt16 = 62
    public static let machineAArch64: UInt16 = 183

    public convenience init(path: String) throws {
        let mapped: MappedFile
        do {
            mapped = try MappedFile(path: path)
        } catch let error as SystemCallError {
            throw ObjectFileError.cannotOpen(path: path, reason: error.errno.description)
        }
        try self.init(file: mapped)
    }

    public init(file: MappedFile) throws {
        self.file = file
        self.path = file.path
        let data = file.bytes
        let path = file.path
        guard data.count >= 64, data[0] == 0x7f, data[1] == 0x45, data[2] == 0x4c, data[3] == 0x46 else {
            throw ObjectFileError.notELF(path: path)
        }
        guard data[4] == 2 else { throw ObjectFileError.unsupported(path: path, what: "32-bit ELF") }
        guard data[5] == 1 else { throw ObjectFileError.unsupported(path: path, what: "big-endian ELF") }
        func u16(_ o: Int) -> UInt16 { data.loadUnaligned(fromByteOffset: o, as: UInt16.self) }
        func u32(_ o: Int) -> UInt32 { data.loadUnaligned(fromByteOffset: o, as: UInt32.self) }
        func u64(_ o: Int) -> UInt64 { data.loadUnaligned(fromByteOffset: o, as: UInt64.self) }
        fileType = u16(16)
        machine = u16(18)
        let phoff = u64(32), shoff = u64(40)
        let phentsize = Int(u16(54))
        var phnum = Int(u16(56))
        let shentsize = Int(u16(58)), shnumRaw = Int(u16(60)), shstrndxRaw = Int(u16(62))
        // PN_XNUM: more than 65534 program headers (large cores); section 0's sh_info has the count.
        if phnum == 0xffff, shoff != 0, shoff <= UInt64(data.count), UInt64(data.count) - shoff >= 64,
           u32(Int(shoff) + 44) >= 0xffff {
            phnum = Int(u32(Int(shoff) + 44))
        }

        var phdrs = [ELFProgramHeader]()
        if phnum > 0 {
            guard phentsize >= 56, phoff < UInt64(data.count), UInt64(data.count) - phoff >= UInt64(phnum) * UInt64(phentsize) else {
                throw ObjectFileError.truncated(path: path, what: "program headers")
            }
            for i in 0..<phnum {
                let o = Int(phoff) + i * phentsize
                phdrs.append(ELFProgramHeader(type: u32(o), flags: u32(o + 4), offset: u64(o + 8), virtualAddress: u64(o + 16),
                                              fileSize: u64(o + 32), memorySize: u64(o + 40), alignment: u64(o + 48)))
            }
        }
        programHeaders = phdrs

        var raw = [(nameOffset: UInt32, section: ELFSection)]()
        var shnum = shnumRaw
        var shstrndx = shstrndxRaw
        if shoff != 0 {
            // Section 0 must be in the file: extended numbering keeps the real counts there.
            guard shentsize >= 64, shoff <= UInt64(data.count), UInt64(data.count) - shoff >= 64 else {
                throw ObjectFileError.truncated(path: path, what: "section headers")
            }
            if shnum == 0 {
                let extended = u64(Int(shoff) + 32)
                guard extended < 1 << 20 else { throw ObjectFileError.truncated(path: path, what: "section count") }
                shnum = Int(extended)
            }
            if shstrndx == 0xffff { shstrndx = Int(u32(Int(shoff) + 24)) }
            guard UInt64(data.count) - shoff >= UInt64(shnum) * UInt64(shentsize) else {
                throw ObjectFileError.truncated(path: path, what: "section headers")
            }
            for i in 0..<shnum {
                let o = Int(shoff) + i * shentsize
                raw.append((u32(o), ELFSection(name: "", type: u32(o + 4), flags: u64(o + 8), address: u64(o + 16),
                                               offset: u64(o + 24), size: u64(o + 32), link: u32(o + 40), info: u32(o + 44),
                                               alignment: u64(o + 48), entrySize: u64(o + 56))))
            }
        }
        var named = [ELFSection]()
        named.reserveCapacity(raw.count)
        let names: ELFSection? = shstrndx < raw.count ? raw[shstrndx].section : nil
        for (nameOffset, var section) in raw {
            if let names, let name = ELFFile.cString(in: data, at: names.offset, limit: names.size, index: UInt64(nameOffset)) {
                section.name = name
            }
            named.append(section)
        }
        sections = named
    }

    // MARK: Sections

    public func section(named name: String) -> ELFSection? {
        sections.first { $0.name == name && $0.type != ELFSection.typeNoBits }
    }

    /// The raw bytes of a section in the file (still compressed if SHF_COMPRESSED).
    public func rawBytes(of section: ELFSection) throws -> UnsafeRawBufferPointer {
        guard section.type != ELFSection.typeNoBits else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard section.offset <= UInt64(file.bytes.count), UInt64(file.bytes.count) - section.offset >= section.size else {
            throw ObjectFileError.truncated(path: path, what: "section \(section.name)")
        }
        return UnsafeRawBufferPointer(rebasing: file.bytes[Int(section.offset)..<Int(section.offset + section.size)])
    }

    /// The contents of a section, inflated when it is SHF_COMPRESSED (zlib; cached).
    public func contents(of section: ELFSection) throws -> [UInt8] {
        if section.flags & ELFSection.flagCompressed == 0 {
            return Array(try rawBytes(of: section))
        }
        if let cached = inflated[section.name] { return cached }
        let (stream, size) = try compressedStream(of: section)
        var output = [UInt8](repeating: 0, count: size)
        try output.withUnsafeMutableBytes { try inflate(stream, into: $0, section: section) }
        inflated[section.name] = output
        return output
    }

    /// The zlib stream of an SHF_COMPRESSED section and the size it inflates to.
    public func compressedStream(of section: ELFSection) throws -> (stream: UnsafeRawBufferPointer, size: Int) {
        let raw = try rawBytes(of: section)
        // Elf64_Chdr: ch_type, ch_reserved, ch_size, ch_addralign; then the stream.
        guard raw.count >= 24 else { throw ObjectFileError.badCompression(path: path, section: section.name) }
        let type = raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
        let size = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        // A zlib stream inflates at most ~1032x; a larger claim is a garbage header.
        guard type == 1 /* ELFCOMPRESS_ZLIB */, size < 1 << 32, size <= UInt64(raw.count) * 1032 + 4096 else {
            throw ObjectFileError.badCompression(path: path, section: section.name)
        }
        return (UnsafeRawBufferPointer(rebasing: raw[24...]), Int(size))
    }

    /// Inflates a section's stream into `output`, which it must fill exactly.
    public func inflate(_ stream: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, section: ELFSection) throws {
        guard Inflater.preferred.inflate(stream, into: output) else { throw ObjectFileError.badCompression(path: path, section: section.name) }
    }

    /// Contents of the named section, or nil when absent.
    public func contents(ofSectionNamed name: String) throws -> [UInt8]? {
        guard let section = section(named: name) else { return nil }
        return try contents(of: section)
    }

    // MARK: Notes, build-id, debug link

    /// The GNU build-id (NT_GNU_BUILD_ID note), as bytes.
    public lazy var buildID: [UInt8]? = {
        var candidates: [(UInt64, UInt64)] = sections.filter { $0.type == 7 /* SHT_NOTE */ }.map { ($0.offset, $0.size) }
        if candidates.isEmpty {
            candidates = programHeaders.filter { $0.type == ELFProgramHeader.typeNote }.map { ($0.offset, $0.fileSize) }
        }
        for (offset, size) in candidates {
            if let id = ELFFile.findBuildID(in: file.bytes, offset: offset, size: size) { return id }
        }
        return nil
    }()

    /// Worked out once: every cache lookup keys on it (`cacheKey`, cache file names and headers).
    public lazy var buildIDHex: String? = buildID.map { id in
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: id.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }

    /// Identifies the file's contents for caches shared across processes: the build-id,
    /// or the path for a file without one.
    public var cacheKey: String {
        buildIDHex.map { "build-id:" + $0 } ?? "path:" + path
    }

    /// .gnu_debuglink: the separate debug file's name and its CRC32.
    public lazy var debugLink: (name: String, crc: UInt32)? = {
        guard let section = section(named: ".gnu_debuglink"), let bytes = try? rawBytes(of: section) else { return nil }
        guard let name = ELFFile.cString(in: bytes, at: 0, limit: UInt64(bytes.count), index: 0) else { return nil }
        let crcOffset = (name.utf8.count + 1 + 3) & ~3
        guard crcOffset + 4 <= bytes.count else { return nil }
        return (name, bytes.loadUnaligned(fromByteOffset: crcOffset, as: UInt32.self))
    }()

    /// Whether the file carries DWARF type information.
    public var hasDebugInfo: Bool { section(named: ".debug_info") != nil }

    // MARK: Symbols

    /// Finds a defined symbol by exact name, in .dynsym then .symtab, without building an index.
    public func symbol(named name: String) -> ELFSymbol? {
        let wanted = Array(name.utf8)
        for tableType in [ELFSection.typeDynsym, ELFSection.typeSymtab] {
            for table in sections where table.type == tableType {
                if let found = scanSymbols(table, where: { nameBytes in nameBytes.elementsEqual(wanted) }).first {
                    return found
                }
            }
        }
        return nil
    }

    /// All defined symbols of .symtab and .dynsym.
    public func allSymbols() -> [ELFSymbol] {
        var result = [ELFSymbol]()
        for table in sections where table.type == ELFSection.typeSymtab || table.type == ELFSection.typeDynsym {
            result.append(contentsOf: scanSymbols(table, where: { _ in true }))
        }
        return result
    }

    private func scanSymbols(_ table: ELFSection, where matches: (UnsafeRawBufferPointer) -> Bool) -> [ELFSymbol] {
        guard Int(table.link) < sections.count,
              let symbols = try? rawBytes(of: table),
              let strings = try? rawBytes(of: sections[Int(table.link)]) else { return [] }
        // Elf64_Sym is 24 bytes; a garbage entry size means a garbage table.
        guard table.entrySize == 0 || (24...1024).contains(table.entrySize) else { return [] }
        let entrySize = table.entrySize >= 24 ? Int(table.entrySize) : 24
        var found = [ELFSymbol]()
        var offset = 0
        while offset + 24 <= symbols.count {
            let nameIndex = Int(symbols.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            let sectionIndex = symbols.loadUnaligned(fromByteOffset: offset + 6, as: UInt16.self)
            if sectionIndex != 0, nameIndex < strings.count {
                var end = nameIndex
                while end < strings.count && strings[end] != 0 { end += 1 }
                let nameBytes = UnsafeRawBufferPointer(rebasing: strings[nameIndex..<end])
                if matches(nameBytes) {
                    let info = symbols[offset + 4]
                    found.append(ELFSymbol(name: String(decoding: nameBytes, as: UTF8.self),
                                           value: symbols.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self),
                                           size: symbols.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self),
                                           type: info & 0xf, binding: info >> 4, sectionIndex: sectionIndex))
                }
            }
            offset += entrySize
        }
        return found
    }

    // MARK: Addresses

    /// Loadable segments (PT_LOAD).
    public var loadSegments: [ELFProgramHeader] { programHeaders.filter { $0.type == ELFProgramHeader.typeLoad } }

    /// The file offset of a link-time virtual address in a loadable segment's file bytes
    /// (what a uprobe is placed by), nil outside them.
    public func fileOffset(ofVirtualAddress address: UInt64) -> UInt64? {
        for segment in loadSegments where address >= segment.virtualAddress && address - segment.virtualAddress < segment.fileSize {
            let (offset, overflow) = segment.offset.addingReportingOverflow(address - segment.virtualAddress)
            return overflow ? nil : offset
        }
        return nil
    }

    /// Bytes at a link-time virtual address, from the file (initialized data and code only).
    public func bytes(atVirtualAddress address: UInt64, count: Int) -> [UInt8]? {
        for segment in loadSegments {
            guard address >= segment.virtualAddress, count >= 0,
                  address - segment.virtualAddress <= segment.fileSize,
                  segment.fileSize - (address - segment.virtualAddress) >= UInt64(count) else { continue }
            let (offset, overflow) = segment.offset.addingReportingOverflow(address - segment.virtualAddress)
            guard !overflow, offset <= UInt64(file.bytes.count), UInt64(file.bytes.count) - offset >= UInt64(count) else { return nil }
            return Array(file.bytes[Int(offset)..<Int(offset) + count])
        }
        return nil
    }

    // MARK: Helpers

    static func cString(in data: UnsafeRawBufferPointer, at base: UInt64, limit: UInt64, index: UInt64) -> String? {
        guard index < limit, base <= UInt64(data.count), UInt64(data.count) - base >= limit else { return nil }
        let start = Int(base + index)
        let end = Int(base + limit)
        var stop = start
        while stop < end && data[stop] != 0 { stop += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: data[start..<stop]), as: UTF8.self)
    }

    static func findBuildID(in data: UnsafeRawBufferPointer, offset: UInt64, size: UInt64) -> [UInt8]? {
        guard offset <= UInt64(data.count), UInt64(data.count) - offset >= size else { return nil }
        var found: [UInt8]?
        walkNotes(in: data, offset: Int(offset), size: Int(size), maximumDescription: 1 << 16) { type, name, description in
            if type == 3 /* NT_GNU_BUILD_ID */, name.count == 4, name[0] == 0x47, name[1] == 0x4e, name[2] == 0x55 {
                found = Array(description)
                return false
            }
            return true
        }
        return found
    }

    /// Walks the notes (Elf64_Nhdr, name, descriptor, each 4-aligned) in `data[offset,
    /// offset + size)`, which the caller has checked lies inside `data`; `visit` returns
    /// false to stop. Returns the offset of the first malformed note, nil if none was.
    @discardableResult
    static func walkNotes(in data: UnsafeRawBufferPointer, offset: Int, size: Int, maximumDescription: Int,
                          _ visit: (_ type: UInt32, _ name: UnsafeRawBufferPointer, _ description: UnsafeRawBufferPointer) throws -> Bool)
        rethrows -> Int? {
        var o = offset
        let end = offset + size
        while o + 12 <= end {
            let nameSize = Int(data.loadUnaligned(fromByteOffset: o, as: UInt32.self))
            let descSize = Int(data.loadUnaligned(fromByteOffset: o + 4, as: UInt32.self))
            let type = data.loadUnaligned(fromByteOffset: o + 8, as: UInt32.self)
            let nameStart = o + 12
            let descStart = nameStart + ((nameSize + 3) & ~3)
            let next = descStart + ((descSize + 3) & ~3)
            guard nameSize < 1 << 16, descSize < maximumDescription, next <= end, next > o else { return o }
            let name = UnsafeRawBufferPointer(rebasing: data[nameStart..<(nameStart + nameSize)])
            let description = UnsafeRawBufferPointer(rebasing: data[descStart..<(descStart + descSize)])
            if try !visit(type, name, description) { return nil }
            o = next
        }
        return nil
    }
}
