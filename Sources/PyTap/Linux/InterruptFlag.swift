import CLinux

/// The signals that end a recording as a flag: SIGINT, SIGTERM, SIGHUP (a dropped ssh
/// session), SIGQUIT, SIGALRM, SIGUSR1 and SIGUSR2. Long operations poll it and stop
/// cleanly, keeping what they gathered, so no signal but SIGKILL loses a profile. A second
/// Ctrl-C kills pytap the ordinary way (the target is never affected).
public enum InterruptFlag {
    public static func install() {
        clinux_install_interrupt_flag()
        clinux_ignore_sigpipe()
    }

    public static var isSet: Bool { clinux_interrupted() != 0 }

    public static func clear() { clinux_clear_interrupted() }

    /// Also sends those signals to `pid` (a launched command) when another process sent
    /// them to pytap; signals from the terminal reach the command by themselves. 0: to nobody.
    public static func forward(to pid: Int32) { clinux_forward_signals_to(pid) }
}
