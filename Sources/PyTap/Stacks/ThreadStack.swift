/// One thread's stack at one moment, innermost frame first.
public struct ThreadStack: Sendable {
    /// OS thread id (what `ps -L`, `top -H` and `/proc/PID/task` show), when known.
    public var tid: Int32?
    /// The interpreter's id for the thread (`threading.get_ident()`, the pthread handle).
    public var ident: UInt64
    /// Name from the `threading` module, when the thread has one.
    public var name: String?
    /// Whether the thread held the GIL when read.
    public var holdsGIL: Bool
    /// Whether the thread was off-CPU (sleeping or waiting) when read; nil when unknown
    /// (its OS thread could not be told: starting, exiting, or unreadable).
    public var idle: Bool?
    /// Innermost frame first.
    public var frames: [Frame]
    /// Set when the stack is partial; `frames` holds what could be read.
    public var defect: WalkDefect?
    /// With `dump --locals`: each frame's local variables, index for index with `frames`
    /// (nil for a frame whose locals could not be read); empty when not asked for.
    public var locals: [[LocalVariable]?] = []

    public init(tid: Int32?, ident: UInt64, name: String?, holdsGIL: Bool, idle: Bool?, frames: [Frame], defect: WalkDefect? = nil) {
        self.tid = tid
        self.ident = ident
        self.name = name
        self.holdsGIL = holdsGIL
        self.idle = idle
        self.frames = frames
        self.defect = defect
    }
}

/// What pytap knows of the interpreter it read.
public struct PythonInfo: Sendable {
    /// e.g. "3.12.1".
    public var version: String
    /// Executable path as the target sees it.
    public var executable: String
    /// The libpython the interpreter runs from, nil for static builds.
    public var library: String?

    public init(version: String, executable: String, library: String?) {
        self.version = version
        self.executable = executable
        self.library = library
    }
}

/// Every thread's stack of one process at one moment: what `pytap dump` prints.
public struct ProcessSnapshot: Sendable {
    public var pid: Int32
    public var commandLine: [String]
    public var python: PythonInfo
    public var threads: [ThreadStack]

    public init(pid: Int32, commandLine: [String], python: PythonInfo, threads: [ThreadStack]) {
        self.pid = pid
        self.commandLine = commandLine
        self.python = python
        self.threads = threads
    }
}
