/// A running process as a `Target`: memory through `process_vm_readv`, everything else
/// through /proc (files through /proc/PID/root or /proc/PID/map_files, thread states
/// from /proc/PID/task/TID/stat).
public final class LiveProcessTarget: Target {
    public let process: LinuxProcess
    public let debugLocator: DebugFileLocator
    private let stats: ThreadStatReader

    public init(pid: Int32) throws {
        process = try LinuxProcess(pid: pid)
        debugLocator = DebugFileLocator(roots: ["/proc/\(pid)/root", ""])
        stats = ThreadStatReader(pid: pid)
    }

    public var pid: Int32 { process.pid }
    public var memory: RemoteMemory { process.memory }
    public func mappings() throws -> [MemoryMapping] { try process.mappings() }
    public func executablePath() -> String? { try? process.executablePath() }
    public func commandLine() -> [String] { (try? process.commandLine()) ?? [] }
    public func name() -> String { (try? process.name()) ?? "?" }
    public func threadIDs() throws -> [Int32] { try process.threadIDs() }
    public func threadTable(previous: ThreadTable?) throws -> ThreadTable { try process.threadTable(previous: previous) }
    public var isAlive: Bool { process.isAlive }

    public func runState(tid: Int32) -> ThreadRunState? {
        stats.state(tid: tid).map { $0 == "R" ? .running : .idle }
    }

    public func retainThreads(_ tids: Set<Int32>) { stats.retain(only: tids) }

    /// Through /proc/PID/root (the target's own view of its files), or through
    /// /proc/PID/map_files when the file was deleted or replaced after it was mapped.
    public func openObject(path: String, mappings: [MemoryMapping]) throws -> ELFFile {
        if path == MemoryMapping.vdsoName { return try openVDSOImage(mappings: mappings) }
        var failure: Error = ObjectFileError.cannotOpen(path: path, reason: "no mapping of its start")
        if let first = mappings.first, !first.deleted {
            do { return try ELFFile(path: process.hostPath(forTargetPath: path)) } catch { failure = error }
        }
        for mapping in mappings where mapping.fileOffset == 0 {
            do { return try ELFFile(path: process.mapFilesPath(for: mapping)) } catch { failure = error }
        }
        throw failure
    }
}
