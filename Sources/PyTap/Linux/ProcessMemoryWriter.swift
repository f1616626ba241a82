import CLinux
import Glibc
import SystemPackage

/// Writes into a live process's memory with `process_vm_writev(2)`. pytap's only writer,
/// kept apart from the read seam (`RemoteMemory`) on purpose: it is used for nothing but
/// the fields of CPython's remote-debugging protocol (`RemoteExecRequest`), by
/// `memtrace --via tracemalloc`.
public struct ProcessMemoryWriter: Sendable {
    public let pid: Int32

    public init(pid: Int32) {
        self.pid = pid
    }

    /// Copies `bytes` to `address` in one call; a short copy is an error (nothing is retried).
    public func write(_ bytes: [UInt8], at address: UInt64) throws(MemoryReadError) {
        if bytes.isEmpty { return }
        let copied = bytes.withUnsafeBytes { raw -> Int in
            var local = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count)
            var remote = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address)), iov_len: raw.count)
            return clinux_process_vm_writev(pid, &local, 1, &remote, 1)
        }
        if copied == bytes.count { return }
        if copied >= 0 { throw .unmapped(address: address, length: bytes.count) }
        let error = Errno.current
        switch error {
        case .badAddress, .ioError: throw .unmapped(address: address, length: bytes.count)
        case .noSuchProcess: throw .processGone
        case .notPermitted, .permissionDenied: throw .permissionDenied
        default: throw .system(errno: error.rawValue)
        }
    }

    /// A little-endian integer.
    public func write<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(MemoryReadError) {
        try write(withUnsafeBytes(of: value.littleEndian) { Array($0) }, at: address)
    }
}
