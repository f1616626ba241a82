/// A core file as a `Target`: memory from its PT_LOAD segments, and for file-backed pages
/// the core left out (read-only code and data are usually not dumped), from the mapped files
/// themselves — found at their paths, under `sysroot`, or given as `executable`. Every
/// mapped ELF file whose first page the core holds is checked against the core's build-id.
public final class CoreFileTarget: Target {
    public let core: ELFCoreFile
    /// Where the process's files are (its root at the time), nil for the host's root.
    public let sysroot: String?
    /// The executable given by the user, overriding the one the core names.
    public let executableOverride: String?
    public let debugLocator: DebugFileLocator
    private let coreMemory: CoreMemory
    private var opened: [String: ELFFile] = [:]
    private var missing: [String: [String]] = [:]

    public init(path: String, executable: String? = nil, sysroot: String? = nil) throws {
        let core = try ELFCoreFile(path: path)
        self.core = core
        var root = sysroot
        while let r = root, r.count > 1, r.hasSuffix("/") { root = String(r.dropLast()) }
        if root == "/" || root == "" { root = nil }
        self.sysroot = root
        self.executableOverride = executable
        debugLocator = DebugFileLocator(roots: (root.map { [$0] } ?? []) + [""])
        coreMemory = CoreMemory(core: core)
        coreMemory.fileProvider = { [unowned self] mapping in self.fileForMemory(mapping) }
        try verifyMappedFiles()
    }

    public var pid: Int32 { core.pid ?? 0 }
    public var memory: RemoteMemory { coreMemory }
    public var isAlive: Bool { true }
    public func name() -> String { core.processName }
    public func commandLine() -> [String] { core.arguments.split(separator: " ").map(String.init) }
    public func threadIDs() throws -> [Int32] { core.threads.map(\.tid).sorted() }
    public func retainThreads(_ tids: Set<Int32>) {}

    /// A thread stopped inside a system call (x86_64 `orig_rax` ≥ 0) was waiting: idle.
    /// Others were on a CPU or runnable when the core was made.
    public func runState(tid: Int32) -> ThreadRunState? {
        guard let thread = core.threads.first(where: { $0.tid == tid }), let call = thread.systemCall else { return nil }
        return call >= 0 ? .idle : .running
    }

    /// The general registers of a thread as the core saved them.
    public func registers(tid: Int32) -> [UInt64]? {
        core.threads.first { $0.tid == tid }?.registers
    }

    /// The executable as the process named it: the mapped file holding the program headers
    /// (AT_PHDR) or the entry point (AT_ENTRY).
    public func executablePath() -> String? {
        for key in [ELFCoreFile.auxvPHDR, ELFCoreFile.auxvEntry] {
            if let address = core.auxv[key], let file = core.file(containing: address) { return targetView(of: file.path) }
        }
        return executableOverride
    }

    /// The segments, and the file mappings gcore left out of them; by address.
    public func mappings() throws -> [MemoryMapping] {
        var result = [MemoryMapping]()
        var starts = Set<UInt64>()
        for segment in core.segments {
            var mapping = MemoryMapping(start: segment.virtualAddress, end: segment.virtualAddress + segment.memorySize,
                                        readable: segment.flags & 4 != 0, writable: segment.flags & 2 != 0,
                                        executable: segment.flags & 1 != 0)
            if let file = core.files.first(where: { $0.start == segment.virtualAddress }) {
                mapping.fileOffset = file.fileOffset
                mapping.path = targetView(of: file.path)
            } else if core.auxv[ELFCoreFile.auxvVDSO] == segment.virtualAddress {
                mapping.path = MemoryMapping.vdsoName  // dumped whole: its image is in the core
            }
            starts.insert(mapping.start)
            result.append(mapping)
        }
        for file in core.files where !starts.contains(file.start) {
            result.append(MemoryMapping(start: file.start, end: file.end, fileOffset: file.fileOffset, path: targetView(of: file.path)))
        }
        return result.sorted { $0.start < $1.start }
    }

    public func openObject(path: String, mappings: [MemoryMapping]) throws -> ELFFile {
        if let elf = opened[path] { return elf }
        if path == MemoryMapping.vdsoName { return try openVDSOImage(mappings: mappings) }
        var tried = [String]()
        for candidate in hostCandidates(for: path) {
            tried.append(candidate)
            guard let elf = try? ELFFile(path: candidate) else { continue }
            try verify(elf, at: candidate, targetPath: path)
            opened[path] = elf
            return elf
        }
        throw CoreFileError.missingFile(path: path, tried: tried)
    }

    // MARK: Files

    /// A path from the core as the process named it: without the sysroot prefix, which a core
    /// made from outside a chroot (gcore) carries.
    func targetView(of path: String) -> String {
        guard let sysroot, path.hasPrefix(sysroot + "/") else { return path }
        return String(path.dropFirst(sysroot.count))
    }

    /// Where a file the process called `path` may be on this machine, in order.
    func hostCandidates(for path: String) -> [String] {
        if let executableOverride, path == executablePath() { return [executableOverride] }
        guard let sysroot else { return [path] }
        return [sysroot + path, path]
    }

    /// Fails when an ELF file found on disk is not the one the process mapped.
    private func verify(_ elf: ELFFile, at hostPath: String, targetPath: String) throws {
        guard let found = elf.buildID else { return }
        for file in core.files where file.fileOffset == 0 && targetView(of: file.path) == targetPath {
            if let recorded = coreMemory.buildIDInDumpedHeader(at: file.start), recorded != found {
                throw CoreFileError.fileChanged(path: targetPath, core: CoreFileTarget.hex(recorded),
                                                found: CoreFileTarget.hex(found), foundAt: hostPath)
            }
            return
        }
    }

    /// Checks every mapped ELF file that can be found now, so a changed one is named up front.
    private func verifyMappedFiles() throws {
        var seen = Set<String>()
        for file in core.files where file.fileOffset == 0 && seen.insert(file.path).inserted {
            let path = targetView(of: file.path)
            guard coreMemory.buildIDInDumpedHeader(at: file.start) != nil else { continue }
            for candidate in hostCandidates(for: path) {
                guard let elf = try? ELFFile(path: candidate) else { continue }
                try verify(elf, at: candidate, targetPath: path)
                opened[path] = elf
                break
            }
        }
    }

    /// The bytes of a mapped file, for pages the core left out; nil when it cannot be found.
    private func fileForMemory(_ mapping: CoreFileMapping) -> UnsafeRawBufferPointer? {
        let path = targetView(of: mapping.path)
        if let elf = opened[path] { return elf.file.bytes }
        if missing[path] != nil { return nil }
        for candidate in hostCandidates(for: path) {
            if let elf = try? ELFFile(path: candidate) {
                guard (try? verify(elf, at: candidate, targetPath: path)) != nil else { break }
                opened[path] = elf
                return elf.file.bytes
            }
        }
        missing[path] = hostCandidates(for: path)
        return nil
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// A core's address space: dumped bytes from the core, the rest of file-backed mappings
/// from their files.
final class CoreMemory: RemoteMemory {
    let core: ELFCoreFile
    var fileProvider: (CoreFileMapping) -> UnsafeRawBufferPointer? = { _ in nil }

    init(core: ELFCoreFile) {
        self.core = core
    }

    func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let (current, overflow) = address.addingReportingOverflow(UInt64(done))
            guard !overflow, let copied = copy(from: current, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...])),
                  copied > 0 else {
                throw MemoryReadError.unmapped(address: address, length: buffer.count)
            }
            done += copied
        }
    }

    /// Copies what one segment (or its file) holds from `address` on; nil when nothing does.
    private func copy(from address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        var limit = UInt64(buffer.count)
        if let segment = core.segment(containing: address) {
            let within = address - segment.virtualAddress
            if within < segment.fileSize {
                let count = Int(min(limit, segment.fileSize - within))
                let start = Int(segment.offset + within)
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: core.elf.file.bytes[start..<(start + count)]))
                return count
            }
            limit = min(limit, segment.memorySize - within)
        }
        // Not dumped (gcore leaves such mappings out of the core altogether, the kernel keeps an
        // empty segment): a file-backed page is what the file holds.
        guard let file = core.file(containing: address), let bytes = fileProvider(file) else { return nil }
        let count = Int(min(limit, file.end - address))
        let (offset, overflow) = file.fileOffset.addingReportingOverflow(address - file.start)
        guard !overflow else { return nil }
        // Past the end of the file a mapping reads as zeros (the tail of its last page).
        let available = offset < UInt64(bytes.count) ? Int(min(UInt64(count), UInt64(bytes.count) - offset)) : 0
        if available > 0 {
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<(Int(offset) + available)]))
        }
        if available < count {
            UnsafeMutableRawBufferPointer(rebasing: buffer[available..<count]).initializeMemory(as: UInt8.self, repeating: 0)
        }
        return count
    }

    /// Bytes the core itself holds (never from files), nil when any are missing.
    func dumpedBytes(_ address: UInt64, count: Int) -> UnsafeRawBufferPointer? {
        guard let segment = core.segment(containing: address) else { return nil }
        let within = address - segment.virtualAddress
        guard within < segment.fileSize, segment.fileSize - within >= UInt64(count) else { return nil }
        let start = Int(segment.offset + within)
        return UnsafeRawBufferPointer(rebasing: core.elf.file.bytes[start..<(start + count)])
    }

    /// The build-id in the ELF headers dumped at `start` (the kernel and gdb keep the first
    /// page of each mapped ELF file), nil when the core lacks them.
    func buildIDInDumpedHeader(at start: UInt64) -> [UInt8]? {
        guard let header = dumpedBytes(start, count: 64), header[0] == 0x7f, header[1] == 0x45, header[2] == 0x4c,
              header[3] == 0x46, header[4] == 2 else { return nil }
        let phoff = header.loadUnaligned(fromByteOffset: 32, as: UInt64.self)
        let phentsize = Int(header.loadUnaligned(fromByteOffset: 54, as: UInt16.self))
        let phnum = Int(header.loadUnaligned(fromByteOffset: 56, as: UInt16.self))
        guard phentsize >= 56, phnum < 256, phoff < 1 << 20,
              let headers = dumpedBytes(start + phoff, count: phentsize * phnum) else { return nil }
        for index in 0..<phnum {
            let o = index * phentsize
            guard headers.loadUnaligned(fromByteOffset: o, as: UInt32.self) == ELFProgramHeader.typeNote else { continue }
            let offset = headers.loadUnaligned(fromByteOffset: o + 8, as: UInt64.self)
            let size = headers.loadUnaligned(fromByteOffset: o + 32, as: UInt64.self)
            guard offset < 1 << 20, size < 1 << 16, let notes = dumpedBytes(start + offset, count: Int(size)) else { continue }
            if let id = ELFFile.findBuildID(in: notes, offset: 0, size: size) { return id }
        }
        return nil
    }
}
