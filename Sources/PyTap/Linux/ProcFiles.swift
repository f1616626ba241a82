import Glibc
import SystemPackage

/// Reading small files under /proc (and files a user names): whole-file reads with EINTR
/// handled in one place.
public enum ProcFiles {
    /// Reads a whole file (proc files report size 0, so read until EOF), up to `limit` bytes.
    public static func readAll(_ path: String, limit: Int = 64 << 20) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SystemCallError("open \(path)", Errno.current) }
        defer { close(fd) }
        var result = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 16384)
        while result.count < limit {
            let n = chunk.withUnsafeMutableBytes { raw in Glibc.read(fd, raw.baseAddress, raw.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemCallError("read \(path)", Errno.current)
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }

    static func readString(_ path: String, limit: Int = 64 << 20) throws -> String {
        String(decoding: try readAll(path, limit: limit), as: UTF8.self)
    }

    /// The target of a symbolic link such as /proc/PID/exe.
    static func readLink(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        if n < 0 { throw SystemCallError("readlink \(path)", Errno.current) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Names in a directory (without "." and "..").
    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw SystemCallError("opendir \(path)", Errno.current) }
        defer { closedir(dir) }
        var names = [String]()
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
