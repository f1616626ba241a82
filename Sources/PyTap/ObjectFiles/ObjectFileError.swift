/// Why an object file could not be read.
public enum ObjectFileError: Error, Equatable, Sendable {
    case notELF(path: String)
    /// A class, byte order or machine pytap does not read (it reads 64-bit little-endian ELF).
    case unsupported(path: String, what: String)
    /// A header or table runs past the end of the file.
    case truncated(path: String, what: String)
    /// A compressed section could not be inflated.
    case badCompression(path: String, section: String)
    case cannotOpen(path: String, reason: String)
}
