/// Why a profile could not be written in some format.
public enum ReportError: Error, Equatable, CustomStringConvertible {
    /// The profile's sampling rate is not positive, so a sample's weight is unknown.
    case invalidRate(Int)
    /// zlib failed (the operation and zlib's return code).
    case compression(operation: String, code: Int32)
    /// Bytes that should be a gzip-compressed pprof profile are not.
    case invalidPprof(String)

    public var description: String {
        switch self {
        case .invalidRate(let rate):
            return "cannot weigh samples: the sampling rate is \(rate) Hz (must be positive)"
        case .compression(let operation, let code):
            return "zlib \(operation) failed with code \(code)"
        case .invalidPprof(let reason):
            return "not a pprof profile: \(reason)"
        }
    }
}
