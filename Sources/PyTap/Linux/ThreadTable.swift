import Glibc

/// The threads of a process at one moment, under both names a thread has: its id in pytap's
/// /proc (the host's, what `top -H` and /proc/PID/task show) and its id in the target's own
/// PID namespace (what the interpreter records: `native_thread_id`, glibc's `pthread->tid`).
/// The two differ for a target in a container seen from the host; /proc/PID/task/TID/status
/// (`NSpid:`) links them.
public struct ThreadTable: Sendable {
    /// Thread ids as /proc names them, sorted.
    public let hostTIDs: [Int32]
    private let hostSet: Set<Int32>
    /// Target-view id → host id; nil when the target shares pytap's PID namespace.
    fileprivate let hostByTarget: [Int32: Int32]?

    public init(hostTIDs: [Int32], hostByTarget: [Int32: Int32]? = nil) {
        self.hostTIDs = hostTIDs
        self.hostSet = Set(hostTIDs)
        self.hostByTarget = hostByTarget
    }

    /// Thread ids as the target itself names them.
    public var targetTIDs: Set<Int32> { hostByTarget.map { Set($0.keys) } ?? hostSet }

    /// Whether the target lives in another PID namespace than pytap's /proc.
    public var isTranslated: Bool { hostByTarget != nil }

    /// The host id of a thread the target names `tid`, nil when no live thread has it.
    public func hostTID(forTargetTID tid: Int32) -> Int32? {
        if let hostByTarget { return hostByTarget[tid] }
        return hostSet.contains(tid) ? tid : nil
    }

    /// The innermost (own-namespace) id of an `NSpid:` line of /proc/.../status, nil when
    /// the line is missing (kernels before 4.1 have no namespaces to translate).
    public static func innermostID(statusText: String) -> Int32? {
        for line in statusText.split(separator: "\n") where line.hasPrefix("NSpid:") {
            return line.dropFirst("NSpid:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).last.flatMap { Int32($0) }
        }
        return nil
    }

    /// Number of ids on an `NSpid:` line: 1 when the process is in pytap's PID namespace.
    public static func namespaceDepth(statusText: String) -> Int {
        for line in statusText.split(separator: "\n") where line.hasPrefix("NSpid:") {
            return line.dropFirst("NSpid:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).count
        }
        return 1
    }
}

extension LinuxProcess {
    /// The process's threads under both ids. `previous` (the last table of this process)
    /// spares re-reading the status file of threads already known: a thread keeps its ids.
    public func threadTable(previous: ThreadTable? = nil) throws -> ThreadTable {
        let host = try threadIDs()
        guard inOtherPIDNamespace else { return ThreadTable(hostTIDs: host) }
        var known = [Int32: Int32]()
        if let previous, let map = previous.hostByTarget {
            for (target, hostTID) in map { known[hostTID] = target }
        }
        var hostByTarget = [Int32: Int32]()
        for tid in host {
            if let target = known[tid] {
                hostByTarget[target] = tid
            } else if let text = try? ProcFiles.readString("/proc/\(pid)/task/\(tid)/status", limit: 8192),
                      let target = ThreadTable.innermostID(statusText: text) {
                hostByTarget[target] = tid
            }
        }
        return ThreadTable(hostTIDs: host, hostByTarget: hostByTarget)
    }
}
