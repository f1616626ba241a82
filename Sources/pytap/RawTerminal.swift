import CLinux
import Glibc

/// The terminal in the mode `pytap top` draws in: alternate screen, hidden cursor, keys
/// read one at a time without echo. `restore()` (also run on deinit) puts everything back;
/// Ctrl-Z gives the terminal back while pytap is stopped and takes it again after `fg`.
final class RawTerminal {
    private var saved = termios()
    private var active = false

    init?() {
        guard isatty(0) == 1, isatty(1) == 1, tcgetattr(0, &saved) == 0, enter() else { return nil }
    }

    deinit { restore() }

    private func enter() -> Bool {
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        // Non-blocking reads: VMIN 0, VTIME 0.
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(0, TCSANOW, &raw) == 0 else { return false }
        active = true
        clinux_watch_suspend(1)
        writeRaw("\u{1b}[?1049h\u{1b}[?25l")
        return true
    }

    /// Normal screen, cursor shown, the saved terminal modes, Ctrl-Z's default action.
    func restore() {
        guard active else { return }
        active = false
        writeRaw("\u{1b}[?25h\u{1b}[?1049l")
        tcsetattr(0, TCSANOW, &saved)
        clinux_watch_suspend(0)
    }

    /// After Ctrl-Z: restores the terminal, stops pytap as the shell expects of a job, and
    /// once continued (`fg`) takes the terminal again. True if that happened (redraw).
    func suspendIfRequested() -> Bool {
        guard active, clinux_take_suspend() != 0 else { return false }
        restore()
        raise(SIGSTOP)
        // Continued: the shell may have changed the modes meanwhile; start from its view.
        tcgetattr(0, &saved)
        return enter()
    }

    /// Keys typed since the last call.
    func pendingKeys() -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = read(0, &buffer, buffer.count)
        return n > 0 ? Array(buffer[0..<n]) : []
    }

    /// Replaces the screen's contents.
    func draw(_ lines: [String]) {
        guard active else { return }
        var frame = "\u{1b}[H"
        for line in lines { frame += line + "\u{1b}[K\r\n" }
        frame += "\u{1b}[J"
        writeRaw(frame)
    }

    private func writeRaw(_ text: String) {
        var text = text
        _ = text.withUTF8 { writeAll(1, UnsafeRawBufferPointer($0)) }
    }
}
