import Glibc

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

/// Formats 12345 as "12,345".
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (index, character) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { out += "," }
        out.append(character)
    }
    return value < 0 ? "-" + out : out
}

/// Formats a fraction as a percentage with one decimal.
func percent(_ part: Int, of total: Int) -> String {
    guard total > 0 else { return "0.0%" }
    let tenths = (part * 1000 + total / 2) / total
    return "\(tenths / 10).\(tenths % 10)%"
}
