import CLinux

/// SIGINT/SIGTERM as a flag: long operations poll it and stop cleanly, keeping what they
/// gathered. A second Ctrl-C kills pytap the ordinary way (the target is never affected).
public enum InterruptFlag {
    public static func install() {
        clinux_install_interrupt_flag()
        clinux_ignore_sigpipe()
    }

    public static var isSet: Bool { clinux_interrupted() != 0 }

    public static func clear() { clinux_clear_interrupted() }
}
