import CLinux

/// gzip compression through zlib, for pprof's `.pb.gz` files.
public enum Gzip {
    private static let chunkSize = 64 * 1024

    /// Compresses `bytes` into a gzip member (RFC 1952). The header carries no file name
    /// and a zero modification time, so equal input gives equal output.
    public static func compress(_ bytes: [UInt8], level: Int32 = Z_DEFAULT_COMPRESSION) throws -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 16: a 32 KiB window with a gzip header and trailer instead of zlib's.
        let initCode = deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                                     zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initCode == Z_OK else { throw ReportError.compression(operation: "deflateInit2", code: initCode) }
        defer { deflateEnd(&stream) }
        return try run(&stream, input: bytes, operation: "deflate") { deflate(&$0, Z_FINISH) }
    }

    /// Decompresses gzip (or zlib) data, all concatenated members.
    public static func decompress(_ bytes: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 32: detect a gzip or zlib header.
        let initCode = inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initCode == Z_OK else { throw ReportError.compression(operation: "inflateInit2", code: initCode) }
        defer { inflateEnd(&stream) }
        return try run(&stream, input: bytes, operation: "inflate") { stream in
            let code = inflate(&stream, Z_NO_FLUSH)
            // A second gzip member may follow the first: start over on it.
            if code == Z_STREAM_END && stream.avail_in > 0 {
                let resetCode = inflateReset(&stream)
                return resetCode == Z_OK ? Z_OK : resetCode
            }
            return code
        }
    }

    /// Feeds all of `input` to `step` until it reports the end of the stream.
    private static func run(_ stream: inout z_stream, input: [UInt8], operation: String,
                            step: (inout z_stream) -> Int32) throws -> [UInt8] {
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        try input.withUnsafeBufferPointer { source in
            stream.next_in = source.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
            stream.avail_in = UInt32(source.count)
            while true {
                let (code, produced) = chunk.withUnsafeMutableBufferPointer { buffer -> (Int32, Int) in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = UInt32(buffer.count)
                    let code = step(&stream)
                    return (code, buffer.count - Int(stream.avail_out))
                }
                output.append(contentsOf: chunk[0..<produced])
                switch code {
                case Z_STREAM_END:
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR where produced > 0:
                    continue
                case Z_BUF_ERROR:
                    // No progress possible: the input ended before the stream did.
                    throw ReportError.compression(operation: operation + " (truncated input)", code: code)
                default:
                    throw ReportError.compression(operation: operation, code: code)
                }
            }
        }
        stream.next_in = nil
        stream.next_out = nil
        return output
    }
}
