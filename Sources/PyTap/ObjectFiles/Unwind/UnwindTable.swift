import Synchronization

/// The unwind information of one object file: `.eh_frame` found through the
/// `.eh_frame_hdr` binary-search table, and `.debug_frame` (from the file or its separate
/// debug file) for code that `.eh_frame` does not cover. Addresses are link-time addresses.
public final class UnwindTable: @unchecked Sendable {
    public let architecture: UnwindArchitecture
    public let ehFrame: CFISection?
    public let debugFrame: CFISection?
    /// The file itself, for signal-trampoline code bytes.
    public let elf: ELFFile?
    public let header: EHFrameHeader?
    /// Sorted (start, FDE offset) pairs, built on first use where no header table serves.
    private let ehFrameIndex = Mutex<[FDEIndexEntry]?>(nil)
    private let debugFrameIndex = Mutex<[FDEIndexEntry]?>(nil)

    struct FDEIndexEntry {
        var start: UInt64
        var end: UInt64
        var offset: Int
    }

    /// The tables of an ELF file; `debugFile` (its separate debug file) may add `.debug_frame`.
    public convenience init(elf: ELFFile, debugFile: ELFFile? = nil) throws {
        guard let architecture = UnwindArchitecture.forMachine(elf.machine) else {
            throw ObjectFileError.unsupported(path: elf.path, what: "unwinding for ELF machine \(elf.machine)")
        }
        var ehFrame: CFISection?
        if let section = elf.section(named: ".eh_frame"), section.size > 0 {
            ehFrame = try CFISection(elf: elf, section: section, ehFrame: true)
        }
        var header: EHFrameHeader?
        if let section = elf.section(named: ".eh_frame_hdr"), section.size > 0 {
            header = try EHFrameHeader(bytes: Array(try elf.rawBytes(of: section)), address: section.address)
        } else if let segment = elf.programHeaders.first(where: { $0.type == EHFrameHeader.programHeaderType }),
                  let bytes = elf.bytes(atVirtualAddress: segment.virtualAddress, count: Int(clamping: segment.fileSize)) {
            header = try EHFrameHeader(bytes: bytes, address: segment.virtualAddress)
        }
        var debugFrame: CFISection?
        for file in [elf, debugFile].compactMap({ $0 }) {
            if let section = file.section(named: ".debug_frame"), section.size > 0 {
                debugFrame = try CFISection(elf: file, section: section, ehFrame: false)
                break
            }
        }
        self.init(architecture: architecture, ehFrame: ehFrame, header: header, debugFrame: debugFrame, elf: elf)
    }

    /// Tables from sections already in hand (tests).
    public init(architecture: UnwindArchitecture, ehFrame: CFISection?, header: EHFrameHeader?, debugFrame: CFISection?,
                elf: ELFFile? = nil) {
        self.architecture = architecture
        self.ehFrame = ehFrame
        self.header = header
        self.debugFrame = debugFrame
        self.elf = elf
    }

    /// The FDE covering a link-time address, and the section it is in.
    public func frameDescriptionEntry(for address: UInt64) throws -> (fde: FrameDescriptionEntry, section: CFISection)? {
        if let ehFrame {
            if let header, let table = header.table, table.count > 0 {
                if let fdeAddress = header.fdeAddress(for: address) {
                    let offset = fdeAddress &- ehFrame.address
                    guard offset < UInt64(ehFrame.count) else {
                        throw DWARFError.malformed(".eh_frame_hdr points outside .eh_frame (0x\(String(fdeAddress, radix: 16)))")
                    }
                    let fde = try ehFrame.frameDescriptionEntry(at: Int(offset))
                    if fde.contains(address) { return (fde, ehFrame) }
                }
            } else if let fde = try find(address, in: ehFrame, index: ehFrameIndex) {
                return (fde, ehFrame)
            }
        }
        if let debugFrame, let fde = try find(address, in: debugFrame, index: debugFrameIndex) {
            return (fde, debugFrame)
        }
        return nil
    }

    /// The unwind row in effect at a link-time address, with its CIE (nil: no CFI covers it).
    public func row(for address: UInt64) throws -> (row: UnwindRow, fde: FrameDescriptionEntry)? {
        guard let (fde, section) = try frameDescriptionEntry(for: address) else { return nil }
        let row = try CFIProgram(section: section, architecture: architecture).row(for: fde, at: address)
        return (row, fde)
    }

    /// Code bytes at a link-time address, from the file.
    public func code(at address: UInt64, count: Int) -> [UInt8]? {
        elf?.bytes(atVirtualAddress: address, count: count)
    }

    private func find(_ address: UInt64, in section: CFISection, index: borrowing Mutex<[FDEIndexEntry]?>) throws -> FrameDescriptionEntry? {
        let entries = try index.withLock { cached -> [FDEIndexEntry] in
            if let cached { return cached }
            let built = try UnwindTable.buildIndex(section)
            cached = built
            return built
        }
        guard let index = entries.lastIndex(withKeyAtMost: address, key: \.start) else { return nil }
        let entry = entries[index]
        guard address < entry.end else { return nil }
        return try section.frameDescriptionEntry(at: entry.offset)
    }

    /// All FDEs of a section, sorted by start address. Entries that do not parse are
    /// skipped (one bad FDE should not cost the whole file its unwind information).
    static func buildIndex(_ section: CFISection) throws -> [FDEIndexEntry] {
        var entries = [FDEIndexEntry]()
        var offset = 0
        while offset < section.count {
            guard let (entry, next) = try? section.entry(at: offset) else { break }
            if case .terminator = entry { break }
            if case .fde(let fde) = entry, fde.addressRange > 0 {
                entries.append(FDEIndexEntry(start: fde.initialLocation, end: fde.initialLocation &+ fde.addressRange, offset: offset))
            }
            offset = next
        }
        entries.sort { $0.start < $1.start }
        return entries
    }
}

/// `.eh_frame_hdr` (LSB): the address of `.eh_frame` and a table of (initial location,
/// FDE address) pairs sorted by location, searched by bisection.
public struct EHFrameHeader: Sendable {
    public static let programHeaderType: UInt32 = 0x6474_e550  // PT_GNU_EH_FRAME
    public let address: UInt64
    public let ehFramePointer: UInt64?
    /// The search table, decoded to absolute link-time addresses.
    public let table: [(location: UInt64, fde: UInt64)]?

    public init(bytes: [UInt8], address: UInt64) throws {
        self.address = address
        let section = CFISection(ehFrame: true, copying: bytes, address: address)
        var cursor = section.cursor(at: 0)
        let version = try cursor.u8()
        guard version == 1 else { throw DWARFError.malformed(".eh_frame_hdr version \(version)") }
        let pointerEncoding = try cursor.u8()
        let countEncoding = try cursor.u8()
        let tableEncoding = try cursor.u8()
        ehFramePointer = try PointerEncoding.read(pointerEncoding, from: &cursor, section: section, dataBase: address)
        guard let count = try PointerEncoding.read(countEncoding, from: &cursor, section: section, dataBase: address),
              tableEncoding != PointerEncoding.omit else {
            table = nil
            return
        }
        // Two values per entry; a count beyond what the bytes can hold is garbage.
        let minimumEntrySize = 2 * (PointerEncoding.fixedSize(tableEncoding) ?? 1)
        guard count <= UInt64(cursor.remaining / minimumEntrySize) else {
            throw DWARFError.malformed(".eh_frame_hdr claims \(count) entries")
        }
        var entries = [(location: UInt64, fde: UInt64)]()
        entries.reserveCapacity(Int(count))
        for _ in 0..<Int(count) {
            guard let location = try PointerEncoding.read(tableEncoding, from: &cursor, section: section, dataBase: address),
                  let fde = try PointerEncoding.read(tableEncoding, from: &cursor, section: section, dataBase: address) else {
                throw DWARFError.malformed(".eh_frame_hdr table entry omitted")
            }
            entries.append((location, fde))
        }
        table = entries
    }

    /// The FDE address of the last entry whose location is at or before `address`.
    public func fdeAddress(for address: UInt64) -> UInt64? {
        guard let table else { return nil }
        var low = 0, high = table.count
        while low < high {
            let middle = (low + high) / 2
            if table[middle].location <= address { low = middle + 1 } else { high = middle }
        }
        return low > 0 ? table[low - 1].fde : nil
    }
}
