import Glibc
import PyTap

/// Why the kernel refused pytap a process's memory, and what to do about it. Reading needs
/// ptrace-read access: the same user and a dumpable target, or CAP_SYS_PTRACE; without
/// CAP_SYS_PTRACE also every capability the target has; and Yama, AppArmor or SELinux may
/// refuse even root.
enum PermissionCause {
    static let ptraceCapability = 19

    static func explain(pid: Int32) -> String {
        let ours = Capabilities(pid: "self")
        let theirs = Capabilities(pid: String(pid))
        let yamaScope = (try? String(decoding: readFile("/proc/sys/kernel/yama/ptrace_scope"), as: UTF8.self)
            .trimmingCharacters(in: " \n")) ?? "0"
        if yamaScope == "3" {
            return "kernel.yama.ptrace_scope is 3, which forbids every process, root included, to read another until reboot"
        }
        let hasPtrace = ours.map { $0.effective & (1 << ptraceCapability) != 0 } ?? false
        // Root (or a holder of CAP_SYS_PTRACE) refused: capabilities explain it; a plain user is told to become root.
        if geteuid() == 0 || hasPtrace, let ours, let theirs, theirs.permitted & ~ours.permitted != 0 {
            let missing = Capabilities.names(theirs.permitted & ~ours.permitted)
            let lacking = "the process has capabilities pytap lacks (\(missing.prefix(4).joined(separator: ", "))"
                + (missing.count > 4 ? ", …" : "") + ")"
            if hasPtrace {
                return lacking + ", and pytap's CAP_SYS_PTRACE does not make up for them (the process is in a parent "
                    + "user namespace, or a security module such as AppArmor or SELinux refuses); run pytap where it has them"
            }
            return lacking + " and pytap has no CAP_SYS_PTRACE (e.g. a container without --cap-add SYS_PTRACE); give it CAP_SYS_PTRACE"
        }
        if !hasPtrace && geteuid() == 0 {
            return "pytap runs as root but without CAP_SYS_PTRACE (e.g. in a container without --cap-add SYS_PTRACE), "
                + "and the process is not dumpable or belongs to another user namespace; give pytap CAP_SYS_PTRACE"
        }
        if hasPtrace {
            return "pytap has CAP_SYS_PTRACE, so a security module (AppArmor, SELinux, Yama) or the process's user "
                + "namespace (pytap must be in it or an ancestor) refused; see the kernel or audit log"
        }
        var hint = "run pytap as root (sudo) or give it CAP_SYS_PTRACE"
        if yamaScope != "0" { hint += "; kernel.yama.ptrace_scope is \(yamaScope), see README" }
        return hint
    }
}

/// A process's capability sets, from the CapEff and CapPrm lines of /proc/PID/status.
struct Capabilities {
    var effective: UInt64
    var permitted: UInt64

    init?(pid: String) {
        guard let bytes = try? readFile("/proc/\(pid)/status") else { return nil }
        var effective: UInt64?
        var permitted: UInt64?
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 1)
            guard fields.count == 2 else { continue }
            let value = UInt64(String(fields[1]).trimmingCharacters(in: " \t"), radix: 16)
            if fields[0] == "CapEff" { effective = value }
            if fields[0] == "CapPrm" { permitted = value }
        }
        guard let effective, let permitted else { return nil }
        self.effective = effective
        self.permitted = permitted
    }

    /// capabilities(7) names, by bit.
    static let knownNames = [
        "cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid", "cap_kill", "cap_setgid",
        "cap_setuid", "cap_setpcap", "cap_linux_immutable", "cap_net_bind_service", "cap_net_broadcast",
        "cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner", "cap_sys_module", "cap_sys_rawio",
        "cap_sys_chroot", "cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
        "cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease", "cap_audit_write",
        "cap_audit_control", "cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog", "cap_wake_alarm",
        "cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
    ]

    static func names(_ set: UInt64) -> [String] {
        (0..<64).filter { set & (1 << UInt64($0)) != 0 }.map { $0 < knownNames.count ? knownNames[$0] : "cap_\($0)" }
    }
}
