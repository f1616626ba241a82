/// One asyncio task as reported: `id` is the task object's address (Python's `id(task)`).
public struct AsyncTask: Sendable {
    public var id: UInt64
    public var name: String
    public var state: AsyncTaskState
    /// The coroutine chain the task is suspended in, innermost first.
    public var frames: [Frame]
    /// Why the chain is incomplete, nil when complete.
    public var defect: WalkDefect?
    /// The ids of the tasks awaiting this one.
    public var awaitedBy: [UInt64]

    public init(id: UInt64, name: String, state: AsyncTaskState, frames: [Frame], defect: WalkDefect?, awaitedBy: [UInt64]) {
        self.id = id
        self.name = name
        self.state = state
        self.frames = frames
        self.defect = defect
        self.awaitedBy = awaitedBy
    }
}

/// Every pending asyncio task of a process at one moment: what `dump --async` prints.
public struct AsyncSnapshot: Sendable {
    public var pid: Int32
    public var commandLine: [String]
    public var python: PythonInfo
    public var tasks: [AsyncTask]
}

/// Takes `AsyncSnapshot`s of a target.
public final class AsyncSnapshotter {
    public let target: PythonTarget
    public let reader: PythonReader
    public let asyncio: AsyncioReader

    public init(target: PythonTarget) throws {
        self.target = target
        self.reader = try PythonReader(target: target)
        self.asyncio = AsyncioReader(reader: reader, layout: try AsyncioReader.layout(of: target))
    }

    public func snapshot() throws -> AsyncSnapshot {
        let interpreters = try reader.interpreters()
        guard !interpreters.isEmpty else { throw AttachError.notInitialized(pid: target.pid) }
        var tasks = [AsyncTask]()
        for raw in try asyncio.tasks() {
            var frames = [Frame]()
            var defect = raw.defect
            for rawFrame in raw.coroutineFrames.reversed() {
                do {
                    frames.append(Frame(python: try reader.location(of: rawFrame)))
                } catch let error as MemoryReadError where error == .processGone {
                    throw error
                } catch {
                    defect = defect ?? .unreadable(address: rawFrame.code, what: "code object")
                }
            }
            tasks.append(AsyncTask(id: raw.address, name: raw.name, state: raw.state, frames: frames, defect: defect,
                                   awaitedBy: raw.awaitedBy))
        }
        tasks.sort { ($0.name, $0.id) < ($1.name, $1.id) }
        let python = PythonInfo(version: target.version.description, executable: target.executable, library: target.library)
        return AsyncSnapshot(pid: target.pid, commandLine: target.source.commandLine(), python: python, tasks: tasks)
    }
}
