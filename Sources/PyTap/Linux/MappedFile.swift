import Glibc
import SystemPackage

/// A read-only, private memory mapping of a whole file (mmap(2)); unmapped on deinit.
/// Object files are read through it so that a 30 MB debug file costs no copying.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SystemCallError("open \(path)", Errno.current) }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw SystemCallError("fstat \(path)", Errno.current) }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
            throw SystemCallError("mmap \(path)", Errno.current)
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    /// An ELF image that lives in memory, not in a file (the vDSO read from a process), held
    /// in an anonymous mapping of its own; `name` stands for the path.
    public init(name: String, copying image: [UInt8]) throws {
        self.path = name
        if image.isEmpty {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let address = mmap(nil, image.count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              address != MAP_FAILED else {
            throw SystemCallError("mmap \(image.count) bytes for \(name)", Errno.current)
        }
        image.withUnsafeBytes { address.copyMemory(from: $0.baseAddress!, byteCount: image.count) }
        bytes = UnsafeRawBufferPointer(start: address, count: image.count)
    }

    deinit {
        if let base = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }

    /// Identity of the file on disk (device, inode), to recognise one file opened by two paths.
    public static func identity(of path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}

/// Device and inode of a file.
public struct FileIdentity: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64
}
