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

    @Flag(name: .long, help: "Print JSON (schema in README: {pid, python, threads: [{tid, ident, name, gil, idle, frames}]}).")
    var json = false

    @Flag(name: .customLong("async"), help: "Print every asyncio task instead: name, state, coroutine stack, as a tree of who awaits whom (3.8+; JSON schema in README).")
    var asyncTasks = false

    func validate() throws {
        if let pid { try validateProcessID(pid) }
        if (pid == nil) == (core == nil) { throw ValidationError("give either --pid PID or --core FILE") }
        if core == nil && (executable != nil || sysroot != nil) { throw ValidationError("--executable and --sysroot go with --core") }
        if asyncTasks && locals { throw ValidationError("--locals does not go with --async") }
    }

    /// `--async`: the asyncio task tree.
    func runAsync() throws {
        let snapshot: AsyncSnapshot
        do {
            let target = try PythonTarget(source: try openSource())
            snapshot = try AsyncSnapshotter(target: target).snapshot()
        } catch {
            Failure.from(error, pid: pid).exit()
        }
        do {
            try writeStandardOutput(json ? AsyncTreeWriter.json(snapshot) : AsyncTreeWriter.text(snapshot))
        } catch {
            Failure.from(error, pid: nil).exit()
        }
        let partial = snapshot.tasks.filter { $0.defect != nil }
        if !partial.isEmpty {
            writeStandardError("pytap: warning: \(partial.count) of \(snapshot.tasks.count) task stacks are partial: \(partial[0].defect.map { "\($0)".escapingControlCharacters } ?? "")\n")
            throw ExitCode(ExitStatus.partialStacks.rawValue)
        }
    }

    private func openSource() throws -> Target {
        if let core { return try CoreFileTarget(path: core, executable: executable, sysroot: sysroot) }
        return try LiveProcessTarget(pid: pid ?? 0)
    }

    func run() throws {
        if asyncTasks { return try runAsync() }
        let snapshot: ProcessSnapshot
        do {
            let source: Target
            if let core {
                source = try CoreFileTarget(path: core, executable: executable, sysroot: sysroot)
            } else {
                source = try LiveProcessTarget(pid: pid ?? 0)
            }
            let target = try PythonTarget(source: source)
            for note in layoutMismatchNotes(target.layout) { writeStandardError(note) }
            let snapshotter = try Snapshotter(target: target)
            snapshotter.includeLocals = locals
            snapshot = try snapshotter.snapshot()
        } catch {
            Failure.from(error, pid: pid).exit()
        }
        do {
            try writeStandardOutput(json ? DumpReport.json(snapshot) : DumpReport.text(snapshot))
        } catch {
            Failure.from(error, pid: nil).exit()
        }
        let partial = snapshot.threads.filter { $0.defect != nil }
        if !partial.isEmpty {
            writeStandardError("pytap: warning: \(partial.count) of \(snapshot.threads.count) stacks are partial: \(partial[0].defect.map { "\($0)".escapingControlCharacters } ?? "")\n")
            throw ExitCode(ExitStatus.partialStacks.rawValue)
        }
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
