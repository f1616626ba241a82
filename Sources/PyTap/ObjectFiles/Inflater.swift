import CLinux
import Glibc

/// Inflates the zlib streams of compressed debug sections. libdeflate, when the system has
/// it (`libdeflate.so.0`, Debian's libdeflate0), inflates a whole buffer of known size
/// ~2.8x faster than zlib (python3.11-dbg's sections: 41 against 116 ms), which is most of
/// a first `dump --native`; it is opened at run time, so pytap needs it neither to build
/// nor to run, and zlib inflates everywhere else. Both check the stream's Adler-32.
public enum Inflater: Sendable {
    case zlib
    case libdeflate

    /// libdeflate when it can be opened (unless `PYTAP_INFLATE=zlib`), else zlib.
    public static let preferred: Inflater = {
        if let chosen = getenv("PYTAP_INFLATE").map({ String(cString: $0) }), chosen == "zlib" { return .zlib }
        return LibDeflate.shared != nil ? .libdeflate : .zlib
    }()

    /// Whether `stream` inflated to exactly `output.count` bytes, all of them written.
    public func inflate(_ stream: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard let source = stream.baseAddress, let destination = output.baseAddress else { return stream.isEmpty && output.isEmpty }
        switch self {
        case .libdeflate:
            if let library = LibDeflate.shared {
                return library.zlibInflate(source, stream.count, destination, output.count)
            }
            fallthrough
        case .zlib:
            var outputSize = uLongf(output.count)
            let status = uncompress(destination.assumingMemoryBound(to: Bytef.self), &outputSize,
                                    source.assumingMemoryBound(to: Bytef.self), uLong(stream.count))
            return status == Z_OK && outputSize == uLongf(output.count)
        }
    }
}

/// The three functions of libdeflate's C API that inflating needs, found by `dlsym`.
struct LibDeflate: @unchecked Sendable {
    typealias Allocate = @convention(c) () -> OpaquePointer?
    typealias Decompress = @convention(c) (OpaquePointer?, UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int,
                                           UnsafeMutablePointer<Int>?) -> Int32
    typealias Free = @convention(c) (OpaquePointer?) -> Void

    let allocate: Allocate
    let decompress: Decompress
    let free: Free

    static let shared: LibDeflate? = {
        guard let handle = dlopen("libdeflate.so.0", RTLD_NOW | RTLD_LOCAL) else { return nil }
        guard let allocate = dlsym(handle, "libdeflate_alloc_decompressor"),
              let decompress = dlsym(handle, "libdeflate_zlib_decompress"),
              let free = dlsym(handle, "libdeflate_free_decompressor") else {
            dlclose(handle)
            return nil
        }
        return LibDeflate(allocate: unsafeBitCast(allocate, to: Allocate.self),
                          decompress: unsafeBitCast(decompress, to: Decompress.self),
                          free: unsafeBitCast(free, to: Free.self))
    }()

    /// A decompressor per call: they are not shared between threads, and one costs ~10 KB.
    /// With no count pointer, libdeflate succeeds (0) only when the output is filled exactly.
    func zlibInflate(_ source: UnsafeRawPointer, _ sourceCount: Int, _ destination: UnsafeMutableRawPointer, _ destinationCount: Int) -> Bool {
        guard let decompressor = allocate() else { return false }
        defer { free(decompressor) }
        return decompress(decompressor, source, sourceCount, destination, destinationCount, nil) == 0
    }
}
