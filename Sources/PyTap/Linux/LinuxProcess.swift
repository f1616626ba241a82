import Glibc
import SystemPackage

/// A process seen through /proc: its memory map, threads, command line, and files as the
/// process sees them (through /proc/PID/root, so targets in containers and chroots work).
public final class LinuxProcess {
    public let pid: Int32
    public let memory: ProcessMemory
    /// The program image when this object was made, before anything was read from it: a
    /// later exec is told by comparing with `image()`.
    public private(set) var attachedImage: ProcessImage?

    public init(pid: Int32) throws {
        self.pid = pid
        self.memory = ProcessMemory(pid: pid)
        var info = stat()
        if stat("/proc/\(pid)", &info) != 0 {
            throw ProcessError.from(Errno.current, pid: pid, operation: "stat /proc/\(pid)")
        }
        attachedImage = try? image()
    }

    public var procDirectory: String { "/proc/\(pid)" }

    /// The process's root directory as pytap sees it ("/" unless chrooted). /proc shows
    /// paths of a chrooted process from pytap's root, e.g. /srv/chroot/usr/bin/python3.
    public lazy var rootDirectory: String = (try? ProcFiles.readLink("/proc/\(pid)/root")) ?? "/"

    /// A path from /proc (maps, exe) as the process itself names it: without its chroot prefix.
    public func targetView(of path: String) -> String {
        let root = rootDirectory
        guard root != "/", !root.isEmpty, path.hasPrefix(root + "/") else { return path }
        return String(path.dropFirst(root.count))
    }

    /// Path through which pytap opens a file that the target names `path`.
    public func hostPath(forTargetPath path: String) -> String {
        "/proc/\(pid)/root" + (path.hasPrefix("/") ? path : "/" + path)
    }

    /// Path under /proc/PID/map_files for a mapping: opens the file actually mapped even
    /// when it was deleted or replaced on disk.
    public func mapFilesPath(for mapping: MemoryMapping) -> String {
        "/proc/\(pid)/map_files/\(String(mapping.start, radix: 16))-\(String(mapping.end, radix: 16))"
    }

    /// The memory map, with file paths as the process names them (see `targetView`).
    public func mappings() throws -> [MemoryMapping] {
        var mappings = MemoryMapping.parse(try readText("maps"))
        if rootDirectory != "/" {
            for index in mappings.indices {
                if let path = mappings[index].path { mappings[index].path = targetView(of: path) }
            }
        }
        return mappings
    }

    /// Whether the process is in another PID namespace than pytap's /proc (a container seen
    /// from the host): its thread ids then differ from /proc's (see `ThreadTable`).
    public lazy var inOtherPIDNamespace: Bool = {
        guard let text = try? readText("status") else { return false }
        return ThreadTable.namespaceDepth(statusText: text) > 1
    }()

    /// Thread ids, from /proc/PID/task.
    public func threadIDs() throws -> [Int32] {
        do {
            return try ProcFiles.listDirectory("/proc/\(pid)/task").compactMap { Int32($0) }.sorted()
        } catch let error as SystemCallError {
            throw classify(error)
        }
    }

    /// The command line, arguments joined by spaces.
    public func commandLine() throws -> [String] {
        let bytes = try readBytes("cmdline")
        return bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast(bytes.last == 0 ? 1 : 0)
            .map { String(decoding: $0, as: UTF8.self) }
    }

    /// Executable path as the target sees it (readlink /proc/PID/exe).
    public func executablePath() throws -> String {
        do {
            var path = try ProcFiles.readLink("/proc/\(pid)/exe")
            if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
            return targetView(of: path)
        } catch let error as SystemCallError {
            throw classify(error)
        }
    }

    /// The process's name (/proc/PID/comm).
    public func name() throws -> String {
        var text = try readText("comm")
        if text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    public func status() throws -> ProcessStat {
        guard let stat = ProcessStat(text: try readText("stat")) else {
            throw ProcessError.system(pid: pid, operation: "parse /proc/\(pid)/stat", errno: EINVAL)
        }
        return stat
    }

    /// Children of this process (all threads), from /proc/PID/task/TID/children.
    public func childPIDs() -> [Int32] {
        var children = Set<Int32>()
        for tid in (try? threadIDs()) ?? [] {
            if let text = try? ProcFiles.readString("/proc/\(pid)/task/\(tid)/children") {
                for field in text.split(separator: " ") {
                    if let child = Int32(field.trimmingWhitespace()) { children.insert(child) }
                }
            }
        }
        return children.sorted()
    }

    /// All descendants of a process, nearest first (at most `limit`; cycles from PID reuse
    /// are cut by a visited set).
    public static func descendants(of pid: Int32, limit: Int = 1024) -> [Int32] {
        var result = [Int32]()
        var visited: Set<Int32> = [pid]
        var queue = [pid]
        var next = 0
        while next < queue.count, result.count < limit {
            let current = queue[next]
            next += 1
            guard let process = try? LinuxProcess(pid: current) else { continue }
            for child in process.childPIDs() where visited.insert(child).inserted {
                result.append(child)
                queue.append(child)
            }
        }
        return result
    }

    /// Whether the process still exists and is not a zombie.
    /// A failure to open /proc for want of file descriptors says nothing of the process.
    public var isAlive: Bool {
        do {
            let stat = try status()
            return stat.state != "Z" && stat.state != "X"
        } catch ProcessError.system(_, _, let errno) where errno == EMFILE || errno == ENFILE {
            return true
        } catch {
            return false
        }
    }

    func readBytes(_ file: String) throws -> [UInt8] {
        do {
            return try ProcFiles.readAll("/proc/\(pid)/\(file)")
        } catch let error as SystemCallError {
            throw classify(error)
        }
    }

    func readText(_ file: String) throws -> String {
        String(decoding: try readBytes(file), as: UTF8.self)
    }

    private func classify(_ error: SystemCallError) -> ProcessError {
        ProcessError.from(error.errno, pid: pid, operation: error.operation)
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\n" || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" { s = s.dropLast() }
        return s
    }
}
