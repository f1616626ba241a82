import Glibc
import PyTap

/// Facts about the terminal pytap writes to.
enum Terminal {
    static var standardErrorIsTTY: Bool { isatty(2) == 1 }
    static var standardOutputIsTTY: Bool { isatty(1) == 1 }

    /// Terminal width in columns (80 when unknown).
    static var columns: Int {
        var size = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }

    static var rows: Int {
        var size = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0 { return Int(size.ws_row) }
        return 24
    }
}

func grouped(_ value: Int) -> String { NumberFormat.grouped(value) }

func percent(_ part: Int, of total: Int) -> String { NumberFormat.percent(part, of: total) }
