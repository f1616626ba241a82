import ArgumentParser
import CLinux
import PyTap

@main
struct PyTapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pytap",
        abstract: "Look inside a running CPython process: where the time goes, what every thread is doing.",
        discussion: """
            pytap reads a running, unmodified Python (2.7, 3.6–3.15) from outside, without stopping it \
            and without writing to it. It needs root or CAP_SYS_PTRACE (see README: Requirements).

            Exit codes: 0 ok, 1 other failure, 2 no such process, 3 permission denied, \
            4 not a (supported) Python process, 5 the process exited while being read, \
            6 done but some stacks are partial, 64 bad usage, 130 interrupted before a launched \
            command became Python. With a command after --, pytap exits with the command's status \
            (0 when pytap ended it: -t, or q in top).
            """,
        version: PyTapVersion.string,
        subcommands: [DumpCommand.self, SampleCommand.self, TopCommand.self, DiffCommand.self, MemtraceCommand.self, CallGraphCommand.self, PyCallGraphCommand.self]
    )
}
