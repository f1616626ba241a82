import ArgumentParser
import PyTap

/// How `sample` and `top` name their target: a running process, or a command to start.
struct TargetOptions: ParsableArguments {
    @Option(name: [.customLong("pid"), .customShort("x")], help: "Process ID of the Python process.")
    var pid: Int32?

    @Argument(parsing: .postTerminator, help: "A command to start and follow until it exits (after --).")
    var command: [String] = []

    func validate() throws {
        if pid == nil && command.isEmpty { throw ValidationError("give --pid PID, or a command after --") }
        if pid != nil && !command.isEmpty { throw ValidationError("give either --pid or a command after --, not both") }
    }

    /// Attaches or launches; on failure prints the error and exits with its status.
    func acquire() -> AcquiredTarget {
        do {
            return try pid.map(TargetAcquisition.attach) ?? TargetAcquisition.launch(command)
        } catch {
            Failure.from(error, pid: pid).exit()
        }
    }
}

/// Checks a --rate value shared by `sample` and `top`.
func validateRate(_ rate: Int) throws {
    if rate < 1 || rate > 20_000 { throw ValidationError("--rate must be between 1 and 20000") }
}
