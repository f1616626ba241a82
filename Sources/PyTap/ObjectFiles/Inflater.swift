import CLinux
import Glibc

/// Inflates the zlib streams of compressed debug sections. libdeflate inflates a whole
/// buffer of known size (what an ELF compression header gives) ~2.8x faster than zlib
/// (python3.11-dbg's sections: 41 against 116 ms), which was most of a first
/// `dump --native`; zlib stays for `PYTAP_INFLATE=zlib` and as the tests' reference. Both
/// check the stream's Adler-32 and succeed only when the output is filled exactly.
public enum Inflater: Sendable {
    case zlib
    case libdeflate

    /// libdeflate, unless `PYTAP_INFLATE=zlib`.
    public static let preferred: Inflater = {
        if let chosen = getenv("PYTAP_INFLATE"), String(cString: chosen) == "zlib" { return .zlib }
        return .libdeflate
    }()

    /// Whether `stream` inflated to exactly `output.count` bytes, all of them written.
    public func inflate(_ stream: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard let source = stream.baseAddress, let destination = output.baseAddress else { return stream.isEmpty && output.isEmpty }
        switch self {
        case .libdeflate:
            // A decompressor per call: one is ~10 KB and must not be shared between threads.
            // With no count pointer, libdeflate succeeds only when the output is filled exactly.
            guard let decompressor = libdeflate_alloc_decompressor() else { return false }
            defer { libdeflate_free_decompressor(decompressor) }
            return libdeflate_zlib_decompress(decompressor, source, stream.count, destination, output.count, nil) == LIBDEFLATE_SUCCESS
        case .zlib:
            var outputSize = uLongf(output.count)
            let status = uncompress(destination.assumingMemoryBound(to: Bytef.self), &outputSize,
                                    source.assumingMemoryBound(to: Bytef.self), uLong(stream.count))
            return status == Z_OK && outputSize == uLongf(output.count)
        }
    }
}
