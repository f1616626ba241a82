/// Finds the separate debug file of an object file, the way gdb does: by build-id under
/// `/usr/lib/debug/.build-id/xx/yyyy.debug`, then by `.gnu_debuglink` next to the file, in
/// its `.debug/` folder and under `/usr/lib/debug/<dir>/`. Each place is tried in the
/// target's root first (a container or chroot, through /proc/PID/root), then the host's.
public struct DebugFileLocator: Sendable {
    /// Filesystem roots to search, in order; "" is the host's root.
    public var roots: [String]

    public init(roots: [String]) {
        self.roots = roots
    }

    /// Candidate paths, in search order, for an object file that the target calls `targetPath`.
    public func candidates(for object: ELFFile, targetPath: String) -> [String] {
        var paths = [String]()
        if let id = object.buildIDHex, id.count > 2 {
            let relative = "/usr/lib/debug/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug"
            for root in roots { paths.append(root + relative) }
        }
        if let link = object.debugLink?.name, !link.isEmpty {
            let directory = targetPath.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            for root in roots {
                paths.append("\(root)\(directory)/\(link)")
                paths.append("\(root)\(directory)/.debug/\(link)")
                paths.append("\(root)/usr/lib/debug\(directory)/\(link)")
            }
        }
        return paths
    }

    /// The first candidate that is an ELF file matching the object's build-id (when both have one).
    public func debugFile(for object: ELFFile, targetPath: String) -> ELFFile? {
        for path in candidates(for: object, targetPath: targetPath) where path != object.path {
            guard let debug = try? ELFFile(path: path) else { continue }
            if let want = object.buildID, let have = debug.buildID, want != have { continue }
            return debug
        }
        return nil
    }
}
