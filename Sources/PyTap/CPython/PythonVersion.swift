/// A CPython major.minor version: what layouts are keyed by.
public struct PythonMinorVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    public var description: String { "\(major).\(minor)" }
}

/// A full CPython version, e.g. 3.12.1 or 3.15.0a2.
public struct PythonVersion: Hashable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    /// nil when only major.minor is known (e.g. from a library name).
    public var micro: Int?
    /// "a", "b", "rc" or "" for a final release.
    public var releaseLevel: String
    public var serial: Int

    public init(major: Int, minor: Int, micro: Int?, releaseLevel: String = "", serial: Int = 0) {
        self.major = major
        self.minor = minor
        self.micro = micro
        self.releaseLevel = releaseLevel
        self.serial = serial
    }

    /// Decodes PY_VERSION_HEX (`Py_Version`, `_Py_DebugOffsets.version`): 0xMMmmuuLS.
    public init?(hex: UInt64) {
        let major = Int((hex >> 24) & 0xff), minor = Int((hex >> 16) & 0xff), micro = Int((hex >> 8) & 0xff)
        let level = Int((hex >> 4) & 0xf), serial = Int(hex & 0xf)
        guard major == 2 || major == 3, minor < 100, hex >> 32 == 0 else { return nil }
        let levels = [0xa: "a", 0xb: "b", 0xc: "rc", 0xf: ""]
        guard let name = levels[level] else { return nil }
        self.init(major: major, minor: minor, micro: micro, releaseLevel: name, serial: serial)
    }

    /// Parses "3.12.1", "3.13.0rc2", "2.7.18+" (the start of `sys.version`).
    public init?(string: String) {
        var text = Substring(string)
        func number() -> Int? {
            let digits = text.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 3 else { return nil }
            text = text.dropFirst(digits.count)
            return Int(digits)
        }
        guard let major = number(), text.first == "." else { return nil }
        text = text.dropFirst()
        guard let minor = number() else { return nil }
        var micro: Int? = nil
        if text.first == "." {
            text = text.dropFirst()
            guard let value = number() else { return nil }
            micro = value
        }
        var level = "", serial = 0
        for candidate in ["rc", "a", "b"] where text.hasPrefix(candidate) {
            text = text.dropFirst(candidate.count)
            level = candidate
            serial = number() ?? 0
            break
        }
        guard major == 2 || major == 3 else { return nil }
        self.init(major: major, minor: minor, micro: micro, releaseLevel: level, serial: serial)
    }

    public var minorVersion: PythonMinorVersion { PythonMinorVersion(major, minor) }

    public var description: String {
        guard let micro else { return "\(major).\(minor)" }
        return "\(major).\(minor).\(micro)" + (releaseLevel.isEmpty ? "" : "\(releaseLevel)\(serial)")
    }
}
