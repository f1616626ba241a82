/// Whether a thread was on a CPU when read.
public enum ThreadRunState: Sendable, Equatable {
    /// Running or runnable (a live thread in state `R`; in a core, stopped outside a system call).
    case running
    /// Sleeping or waiting (a live thread not in `R`; in a core, stopped inside a system call).
    case idle
}

/// The seam between the Python reader and what it reads: a live process, a core file, or a
/// fake in tests. Everything the reader needs from a target goes through here — memory,
/// mappings, the object files it mapped, its threads and their run state — so `PythonTarget`,
/// `Snapshotter` and the sampler work the same on all of them.
public protocol Target: AnyObject {
    /// The process id (for a core file, the id the process had).
    var pid: Int32 { get }
    /// The target's address space.
    var memory: RemoteMemory { get }
    /// The memory map, file paths as the target names them.
    func mappings() throws -> [MemoryMapping]
    /// The executable's path as the target names it, nil when unknown.
    func executablePath() -> String?
    /// The command line (for a core file, as much of it as the core keeps).
    func commandLine() -> [String]
    /// The process's short name (`comm`).
    func name() -> String
    /// Opens the object file mapped at `mappings` (all from one file): the file the target
    /// really mapped, not whatever has that path now.
    func openObject(path: String, mappings: [MemoryMapping]) throws -> ELFFile
    /// Where separate debug files of the target's objects are searched.
    var debugLocator: DebugFileLocator { get }
    /// The OS thread ids, ascending.
    func threadIDs() throws -> [Int32]
    /// The OS threads under both ids (pytap's and the target's PID namespace); `previous`
    /// is the last table of this target.
    func threadTable(previous: ThreadTable?) throws -> ThreadTable
    /// A thread's run state, nil when the thread is gone or its state cannot be had.
    func runState(tid: Int32) -> ThreadRunState?
    /// Lets go of per-thread resources (open files) of threads not in `tids`.
    func retainThreads(_ tids: Set<Int32>)
    /// Whether the target can still be read (a core file always can; a process until it exits).
    var isAlive: Bool { get }
}

extension Target {
    /// The vDSO's image, read from the target's memory once (a page or two): it has no
    /// file, but its symbols and `.eh_frame` name and unwind the time calls that run in it.
    public func openVDSOImage(mappings: [MemoryMapping]) throws -> ELFFile {
        guard let mapping = mappings.first, mapping.end > mapping.start, mapping.size <= MemoryMapping.vdsoSizeLimit else {
            throw ObjectFileError.cannotOpen(path: MemoryMapping.vdsoName, reason: "no mapping of a plausible size")
        }
        let image = try memory.readBytes(mapping.start, count: Int(mapping.size))
        return try ELFFile(file: MappedFile(name: MemoryMapping.vdsoName, copying: image))
    }

    /// A target that shares pytap's view of thread ids (a core file, a fake).
    public func threadTable(previous: ThreadTable?) throws -> ThreadTable {
        ThreadTable(hostTIDs: try threadIDs())
    }
}
