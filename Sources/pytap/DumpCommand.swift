import ArgumentParser
import PyTap

struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print every thread's Python stack, innermost frame first.",
        discussion: """
            Reads the stacks once, without stopping the process. Each thread shows its OS thread id, \
            its Python ident, its name, whether it holds the GIL and whether it is idle (not on a CPU).

            Examples:
              pytap dump --pid 1234
              pytap dump -x 1234 --json | jq '.threads[].frames[0]'
              pytap dump -x 1234 --locals
              pytap dump -x 1234 --native
              pytap dump --core core.1234 [--executable /usr/bin/python3.12] [--sysroot /srv/container-root]

            A core file (from the kernel or gdb's gcore) gives the same output; pages the core left \
            out are read from the files the process had mapped (found at their paths, under --sysroot, \
            or --executable). A thread is idle when the core shows it stopped in a system call.
            """
    )

    @Option(name: [.customLong("pid"), .customShort("x")], parsing: .unconditional, help: "Process ID of the Python process to read.")
    var pid: Int32?

    @Option(name: .long, help: ArgumentHelp("A core file of a Python process to read instead of a live process.", valueName: "file"))
    var core: String?

    @Option(name: .long, help: ArgumentHelp("With --core: the executable the process ran (default: found from the core).", valueName: "path"))
    var executable: String?

    @Option(name: .long, help: ArgumentHelp("With --core: the directory the process's files are under (its root, a container's or a copy).", valueName: "dir"))
    var sysroot: String?

    @Flag(name: .long, help: "Show each frame's arguments and local variables (short reprs; see README).")
    var locals = false

    @Flag(name: .long, help: "Merge each thread's native (C) stack with its Python frames; interpreter plumbing between Python frames is folded. Stops each thread for a moment (ptrace).")
    var native = false

    @Flag(name: .customLong("native-all"), help: "Like --native, but show every native frame.")
    var nativeAll = false

    @Flag(name: .long, help: "Print JSON (schema in README: {pid, python, threads: [{tid, ident, name, gil, idle, frames}]}).")
    var json = false

    @Flag(name: .customLong("async"), help: "Print every asyncio task instead: name, state, coroutine stack, as a tree of who awaits whom (3.8+; JSON schema in README).")
    var asyncTasks = false

    func validate() throws {
        if let pid { try validateProcessID(pid) }
        if (pid == nil) == (core == nil) { throw ValidationError("give either --pid PID or --core FILE") }
        if core == nil && (executable != nil || sysroot != nil) { throw ValidationError("--executable and --sysroot go with --core") }
        if asyncTasks && locals { throw ValidationError("--locals does not go with --async") }
        if locals && (native || nativeAll) { throw ValidationError("--locals cannot be combined with --native yet") }
        if asyncTasks && (native || nativeAll) { throw ValidationError("--native does not go with --async") }
    }

    func run() throws {
        do {
            let target = try PythonTarget(source: try openSource())
            for note in layoutMismatchNotes(target.layout) { writeStandardError(note) }
            if asyncTasks {
                let snapshot = try AsyncSnapshotter(target: target).snapshot()
                try write(json ? AsyncTreeWriter.json(snapshot) : AsyncTreeWriter.text(snapshot),
                          defects: snapshot.tasks.map(\.defect), of: "task stacks")
            }
            let snapshotter = try Snapshotter(target: target)
            snapshotter.includeLocals = locals
            if native || nativeAll {
                snapshotter.native = try NativeStackReader(target: target, policy: nativeAll ? .nativeAll : .native)
            }
            let snapshot = try snapshotter.snapshot()
            try write(json ? DumpReport.json(snapshot) : DumpReport.text(snapshot), defects: snapshot.threads.map(\.defect), of: "stacks")
        } catch let exit as ExitCode {
            throw exit
        } catch {
            Failure.from(error, pid: pid).exit()
        }
    }

    private func openSource() throws -> Target {
        if let core { return try CoreFileTarget(path: core, executable: executable, sysroot: sysroot) }
        return try LiveProcessTarget(pid: pid ?? 0)
    }

    /// Writes the report; partial stacks are a warning and exit status 6 (thrown as ExitCode).
    private func write(_ report: String, defects: [WalkDefect?], of what: String) throws {
        do {
            try writeStandardOutput(report)
        } catch {
            Failure.from(error, pid: nil).exit()
        }
        let partial = defects.compactMap { $0 }
        if let first = partial.first {
            writeStandardError("pytap: warning: \(partial.count) of \(defects.count) \(what) are partial: \("\(first)".escapingControlCharacters)\n")
        }
        throw ExitCode(partial.isEmpty ? ExitStatus.ok.rawValue : ExitStatus.partialStacks.rawValue)
    }
}

/// Where the target's own `_Py_DebugOffsets` disagrees with pytap's table (the target's
/// value is used): one line per field, a sign of a patch release newer than the table.
func layoutMismatchNotes(_ layout: PythonLayout) -> [String] {
    layout.mismatches.map { mismatch in
        "pytap: note: Python \(layout.version)'s _Py_DebugOffsets puts \(mismatch.field.rawValue) at \(mismatch.target), "
            + "pytap's \(layout.version.minorVersion) table at \(mismatch.table); using the target's value (a newer patch release?)\n"
    }
}
