import Glibc

/// Writes all of `buffer` to `fd`, retrying on EINTR and short writes; returns the errno
/// of a failed write, nil on success.
func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Int32? {
    guard let base = buffer.baseAddress else { return nil }
    var offset = 0
    while offset < buffer.count {
        let n = write(fd, base + offset, buffer.count - offset)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return n < 0 ? errno : EIO }
        offset += n
    }
    return nil
}

/// Messages, progress and summaries: best effort (stderr may be closed).
func writeStandardError(_ text: String) {
    var text = text
    _ = text.withUTF8 { writeAll(2, UnsafeRawBufferPointer($0)) }
}

func writeStandardOutput(_ text: String) throws {
    try writeStandardOutput(Array(text.utf8))
}

func writeStandardOutput(_ bytes: [UInt8]) throws {
    if let error = bytes.withUnsafeBytes({ writeAll(1, $0) }) {
        throw OutputError(errno: error, message: "cannot write to standard output: \(String(cString: strerror(error)))")
    }
}

/// A failed write to stdout or an output file; `errno` tells a closed pipe (EPIPE) apart.
struct OutputError: Error {
    var errno: Int32
    var message: String
}
