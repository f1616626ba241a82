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
        throw Failure(message: "cannot write to standard output: \(String(cString: strerror(error)))", status: .failure)
    }
}

/// Writes a file whole (via a temporary name, so a reader never sees half a profile).
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let temporary = path + ".pytap-tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw Failure(message: "cannot write \(path): \(String(cString: strerror(errno)))", status: .failure) }
    let error = bytes.withUnsafeBytes { writeAll(fd, $0) }
    close(fd)
    if let error {
        unlink(temporary)
        throw Failure(message: "cannot write \(path): \(String(cString: strerror(error)))", status: .failure)
    }
    guard rename(temporary, path) == 0 else {
        let message = String(cString: strerror(errno))
        unlink(temporary)
        throw Failure(message: "cannot write \(path): \(message)", status: .failure)
    }
}
