/// The fields pytap uses from /proc/PID/stat or /proc/PID/task/TID/stat (proc(5)).
public struct ProcessStat: Equatable, Sendable {
    /// R running/runnable, S sleeping, D disk sleep, T stopped, t traced, Z zombie, ...
    public var state: Character
    public var parentPID: Int32
    /// User and system CPU time, in clock ticks.
    public var userTicks: UInt64
    public var systemTicks: UInt64
    /// Start time after boot, in clock ticks.
    public var startTicks: UInt64

    public var isRunning: Bool { state == "R" }

    public init(state: Character, parentPID: Int32 = 0, userTicks: UInt64 = 0, systemTicks: UInt64 = 0, startTicks: UInt64 = 0) {
        self.state = state
        self.parentPID = parentPID
        self.userTicks = userTicks
        self.systemTicks = systemTicks
        self.startTicks = startTicks
    }

    public init?(text: String) {
        self.init(bytes: Array(text.utf8)[...])
    }

    /// The state letter alone (the field after the command name), nil when malformed.
    public static func state(in bytes: ArraySlice<UInt8>) -> Character? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let state = close + 2
        guard state < bytes.endIndex, bytes[close + 1] == UInt8(ascii: " "), bytes[state] > 32, bytes[state] < 127 else { return nil }
        return Character(Unicode.Scalar(bytes[state]))
    }

    /// Parses the bytes; the command name is in parentheses and may itself contain ") ".
    public init?(bytes: ArraySlice<UInt8>) {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // fields[0] is field 3 (state) of proc(5).
        let fields = bytes[(close + 1)...].split(whereSeparator: { $0 == 32 || $0 == 10 })
        guard fields.count >= 20, let stateByte = fields[0].first else { return nil }
        func number(_ index: Int) -> UInt64 { UInt64(String(decoding: fields[index], as: UTF8.self)) ?? 0 }
        self.state = Character(Unicode.Scalar(stateByte))
        self.parentPID = Int32(truncatingIfNeeded: Int64(String(decoding: fields[1], as: UTF8.self)) ?? 0)
        self.userTicks = number(11)
        self.systemTicks = number(12)
        self.startTicks = number(19)
    }
}
