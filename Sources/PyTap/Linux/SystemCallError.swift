import Glibc
import SystemPackage

/// A failed system call: which call, on what, and the errno it returned.
public struct SystemCallError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var errno: Errno

    public init(_ operation: String, _ errno: Errno) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation): \(errno.description)" }
}

extension Errno {
    /// The errno of the last failed Glibc call.
    static var current: Errno { Errno(rawValue: Glibc.errno) }
}
