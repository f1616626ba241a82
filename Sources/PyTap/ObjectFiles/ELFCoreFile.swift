/// A thread of a core file: its NT_PRSTATUS note.
public struct CoreThread: Sendable, Equatable {
    public var tid: Int32
    /// The general registers as the note lists them (x86_64: `struct user_regs_struct`, 27 values).
    public var registers: [UInt64]

    /// x86_64 `orig_rax`: the system call the thread was in when stopped, -1 when none.
    public var systemCall: Int64? {
        registers.count > 15 ? Int64(bitPattern: registers[15]) : nil
    }
}

/// A file mapped into the process, from the NT_FILE note.
public struct CoreFileMapping: Sendable, Equatable {
    public var start: UInt64
    public var end: UInt64
    /// Byte offset in the file of `start`.
    public var fileOffset: UInt64
    /// The path as the kernel (or gdb) named it.
    public var path: String
}

/// An ELF core file (ET_CORE) as made by the kernel or gdb's `gcore`: its memory segments
/// (PT_LOAD), threads (NT_PRSTATUS), process info (NT_PRPSINFO), mapped files (NT_FILE) and
/// auxiliary vector (NT_AUXV). Every offset and count is checked against the file; a
/// truncated or garbage core is a `CoreFileError`, never a trap.
public final class ELFCoreFile: @unchecked Sendable {
    public let elf: ELFFile
    public var path: String { elf.path }
    /// PT_LOAD segments, by address.
    public private(set) var segments: [ELFProgramHeader] = []
    public private(set) var threads: [CoreThread] = []
    public private(set) var files: [CoreFileMapping] = []
    public private(set) var auxv: [UInt64: UInt64] = [:]
    /// NT_PRPSINFO: the process id, its short name and the start of its arguments.
    public private(set) var pid: Int32?
    public private(set) var processName = ""
    public private(set) var arguments = ""

    static let noteCorePRStatus: UInt32 = 1
    static let noteCorePRPSInfo: UInt32 = 3
    static let noteCoreAuxv: UInt32 = 6
    static let noteCoreFile: UInt32 = 0x4649_4c45
    /// auxv keys: the program headers' address, the entry point.
    public static let auxvPHDR: UInt64 = 3
    public static let auxvEntry: UInt64 = 9
    /// auxv key: where the vDSO is mapped (AT_SYSINFO_EHDR).
    public static let auxvVDSO: UInt64 = 33
    /// Most threads and file mappings read from notes.
    static let maximumEntries = 1 << 20

    public convenience init(path: String) throws {
        let elf: ELFFile
        do {
            elf = try ELFFile(path: path)
        } catch let error as ObjectFileError {
            throw CoreFileError.unreadable(path: path, reason: error)
        }
        try self.init(elf: elf)
    }

    public init(elf: ELFFile) throws {
        self.elf = elf
        guard elf.fileType == 4 else { throw CoreFileError.notCore(path: elf.path) }
        guard elf.machine == ELFFile.machineX86_64 || elf.machine == ELFFile.machineAArch64 else {
            throw CoreFileError.unsupported(path: elf.path, what: "machine \(elf.machine)")
        }
        let size = UInt64(elf.file.bytes.count)
        var loads = [ELFProgramHeader]()
        for header in elf.programHeaders {
            guard header.type == ELFProgramHeader.typeLoad || header.type == ELFProgramHeader.typeNote else { continue }
            let (end, overflow) = header.offset.addingReportingOverflow(header.fileSize)
            guard !overflow, end <= size else {
                throw CoreFileError.truncated(path: elf.path, expected: overflow ? UInt64.max : end, actual: size)
            }
            if header.type == ELFProgramHeader.typeLoad {
                guard header.fileSize <= header.memorySize, header.virtualAddress <= UInt64.max - header.memorySize else {
                    throw CoreFileError.malformed(path: elf.path, what: "a PT_LOAD segment at 0x\(String(header.virtualAddress, radix: 16))")
                }
                loads.append(header)
            } else {
                try readNotes(offset: Int(header.offset), size: Int(header.fileSize))
            }
        }
        segments = loads.sorted { $0.virtualAddress < $1.virtualAddress }
        guard !threads.isEmpty else { throw CoreFileError.malformed(path: elf.path, what: "no NT_PRSTATUS note (no threads)") }
        if pid == nil { pid = threads.first?.tid }
    }

    /// The segment holding `address`, by binary search.
    public func segment(containing address: UInt64) -> ELFProgramHeader? {
        var low = 0
        var high = segments.count
        while low < high {
            let middle = (low + high) / 2
            if segments[middle].virtualAddress <= address { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return nil }
        let segment = segments[low - 1]
        return address - segment.virtualAddress < segment.memorySize ? segment : nil
    }

    /// The file mapping holding `address`.
    public func file(containing address: UInt64) -> CoreFileMapping? {
        files.first { address >= $0.start && address < $0.end }
    }

    // MARK: Notes

    private func readNotes(offset: Int, size: Int) throws {
        let malformed = try ELFFile.walkNotes(in: elf.file.bytes, offset: offset, size: size, maximumDescription: 1 << 30) { type, name, description in
            // "CORE" notes carry the process; "LINUX" ones (FPU state) and gdb's are not needed.
            if name.starts(with: Array("CORE".utf8)) { try readNote(type: type, desc: description) }
            return true
        }
        if let malformed { throw CoreFileError.malformed(path: elf.path, what: "a note at offset \(malformed)") }
    }

    private func readNote(type: UInt32, desc: UnsafeRawBufferPointer) throws {
        func u64(_ at: Int) -> UInt64 { desc.loadUnaligned(fromByteOffset: at, as: UInt64.self) }
        switch type {
        case ELFCoreFile.noteCorePRStatus:
            // struct elf_prstatus: siginfo (12), cursig (2+2), sigpend, sighold (8+8), pid at 32,
            // ppid, pgrp, sid, four timevals, then the registers at 112.
            guard desc.count >= 112 + 8, threads.count < ELFCoreFile.maximumEntries else {
                throw CoreFileError.malformed(path: elf.path, what: "an NT_PRSTATUS note of \(desc.count) bytes")
            }
            let tid = desc.loadUnaligned(fromByteOffset: 32, as: Int32.self)
            let registerCount = elf.machine == ELFFile.machineX86_64 ? 27 : 34
            let available = min(registerCount, (desc.count - 112) / 8)
            threads.append(CoreThread(tid: tid, registers: (0..<available).map { u64(112 + $0 * 8) }))
        case ELFCoreFile.noteCorePRPSInfo:
            // struct elf_prpsinfo: state, sname, zomb, nice, flag (8 at 8), uid, gid, pid at 24,
            // ppid, pgrp, sid, fname[16] at 40, psargs[80] at 56.
            guard desc.count >= 136 else { throw CoreFileError.malformed(path: elf.path, what: "an NT_PRPSINFO note") }
            pid = desc.loadUnaligned(fromByteOffset: 24, as: Int32.self)
            processName = ELFCoreFile.cString(desc, 40, 16)
            arguments = ELFCoreFile.cString(desc, 56, 80)
        case ELFCoreFile.noteCoreAuxv:
            var o = 0
            while o + 16 <= desc.count {
                auxv[u64(o)] = u64(o + 8)
                o += 16
            }
        case ELFCoreFile.noteCoreFile:
            // count, page size, count × (start, end, offset in pages), then count NUL-terminated names.
            guard desc.count >= 16 else { throw CoreFileError.malformed(path: elf.path, what: "an NT_FILE note") }
            let count = u64(0), pageSize = u64(8)
            guard count < UInt64(ELFCoreFile.maximumEntries), UInt64(desc.count) >= 16 + count * 24, pageSize < 1 << 30 else {
                throw CoreFileError.malformed(path: elf.path, what: "an NT_FILE note claiming \(count) files")
            }
            var nameOffset = 16 + Int(count) * 24
            for index in 0..<Int(count) {
                let base = 16 + index * 24
                var nameEnd = nameOffset
                while nameEnd < desc.count, desc[nameEnd] != 0 { nameEnd += 1 }
                let path = String(decoding: UnsafeRawBufferPointer(rebasing: desc[nameOffset..<nameEnd]), as: UTF8.self)
                let (offset, overflow) = u64(base + 16).multipliedReportingOverflow(by: pageSize)
                if !overflow, u64(base) < u64(base + 8) {
                    files.append(CoreFileMapping(start: u64(base), end: u64(base + 8), fileOffset: offset, path: path))
                }
                nameOffset = min(desc.count, nameEnd + 1)
            }
        default:
            break
        }
    }

    static func cString(_ bytes: UnsafeRawBufferPointer, _ offset: Int, _ limit: Int) -> String {
        var end = offset
        while end < offset + limit, end < bytes.count, bytes[end] != 0 { end += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<end]), as: UTF8.self)
    }
}

/// Why a core file could not be read.
public enum CoreFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file is not an ELF file, or one pytap cannot read at all.
    case unreadable(path: String, reason: ObjectFileError)
    /// An ELF file, but not a core (ET_CORE).
    case notCore(path: String)
    case unsupported(path: String, what: String)
    /// Segments run past the end of the file: the core was cut short (disk full, ulimit -c).
    case truncated(path: String, expected: UInt64, actual: UInt64)
    /// A note or header that cannot be what the kernel or gdb writes.
    case malformed(path: String, what: String)
    /// A file the core maps differs from the one the process had mapped (build-ids differ).
    case fileChanged(path: String, core: String, found: String, foundAt: String)
    /// Memory the core left out and no mapped file could supply.
    case missingFile(path: String, tried: [String])

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "\(path) is not a readable core file (\(reason))"
        case .notCore(let path):
            return "\(path) is an ELF file but not a core file"
        case .unsupported(let path, let what):
            return "\(path): core files of \(what) are not supported"
        case .truncated(let path, let expected, let actual):
            let wanted = expected == UInt64.max ? "more" : "\(expected)"
            return "\(path) is truncated: its segments need \(wanted) bytes, the file has \(actual) (cut short by ulimit -c or a full disk?)"
        case .malformed(let path, let what):
            return "\(path) is not a valid core file: \(what) is malformed"
        case .fileChanged(let path, let core, let found, let foundAt):
            return "\(path) changed since the core was made: the core's build-id is \(core), \(foundAt) has \(found); give the original files with --sysroot DIR"
        case .missingFile(let path, let tried):
            return "\(path), mapped by the core's process, was not found (tried \(tried.joined(separator: ", "))); give --sysroot DIR or --executable PATH"
        }
    }
}
