import Glibc

// What each error of the library says to a user: one clause naming what failed, where,
// and (when there is one) what to do. The CLI puts "pytap: error:" and the PID around it.

/// `0x7f…`: how every message writes an address.
func hexAddress(_ address: UInt64) -> String { "0x" + String(address, radix: 16) }

extension MemoryReadError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unmapped(let address, let length):
            return "nothing readable is mapped at \(hexAddress(address)) (\(length) bytes): a stale or garbage pointer"
        case .processGone:
            return "the process exited while it was being read"
        case .permissionDenied:
            return "the kernel refused to let pytap read the process's memory (run as root or give pytap CAP_SYS_PTRACE)"
        case .tooLarge(let address, let length):
            return "refused to read \(length) bytes at \(hexAddress(address)): more than any structure pytap reads (garbage length)"
        case .fieldOutOfRange(let offset, let size, let available):
            return "a \(size)-byte field at offset \(offset) lies outside the \(available) bytes read (layout table bug or torn read)"
        case .system(let errno):
            return "the memory read failed: \(String(cString: strerror(errno)))"
        }
    }
}

extension ObjectReadError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .implausible(let what, let value):
            return "implausible \(what) \(value): not the object expected, or garbage"
        case .unexpectedType(let expected, let found):
            return "expected a \(expected) object, found a '\(found)' object"
        case .unsupportedString(let kind):
            return "a str in a form pytap does not decode (kind \(kind), e.g. a legacy not-ready string)"
        }
    }
}

extension LayoutError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unsupportedVersion(let version):
            return "pytap has no structure layout for Python \(version) (it reads 2.7 and 3.6–3.15)"
        case .missingField(let field, let version):
            return "the Python \(version) layout lacks the field \(field.rawValue) (a gap in pytap's table for that version)"
        case .badDebugOffsets(let reason):
            return "the target's _Py_DebugOffsets cannot be used: \(reason)"
        }
    }
}

extension ObjectFileError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .notELF(let path): return "\(path) is not an ELF file"
        case .unsupported(let path, let what): return "\(path): \(what) is not supported (pytap reads 64-bit little-endian ELF)"
        case .truncated(let path, let what): return "\(path) is truncated: its \(what) runs past the end of the file"
        case .badCompression(let path, let section): return "\(path): the compressed section \(section) cannot be inflated"
        case .cannotOpen(let path, let reason): return "cannot open \(path): \(reason)"
        }
    }
}

extension ProcessError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .noSuchProcess(let pid): return "no process with PID \(pid) (it does not exist or has exited)"
        case .permissionDenied(let pid, let operation):
            return "permission denied for \(operation) of process \(pid) (run as root or give pytap CAP_SYS_PTRACE)"
        case .exited(let pid): return "process \(pid) exited while pytap was reading it"
        case .system(let pid, let operation, let errno):
            return "\(operation) failed for process \(pid): \(String(cString: strerror(errno)))"
        }
    }
}

extension AttachError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .notPython(let pid, let name, let unreadable):
            var text = "process \(pid) (\(name)) is not a Python process: no libpython or python executable with CPython's runtime is mapped"
            if !unreadable.isEmpty { text += "; could not read " + unreadable.joined(separator: "; ") }
            return text
        case .notInitialized(let pid):
            return "process \(pid) is Python but its interpreter is not running (still starting, or shutting down); try again"
        case .unsupportedVersion(let pid, let version):
            return "process \(pid) runs Python \(version), which pytap does not support (it reads 2.7 and 3.6–3.15)"
        case .unknownVersion(let pid, let path):
            return "process \(pid): cannot tell the Python version of \(path)"
        case .missingSymbols(let pid, let path, let symbols):
            return "process \(pid): \(path) lacks the symbol \(symbols.joined(separator: " or ")) (stripped); install its debug symbols (e.g. the -dbg package)"
        case .freeThreaded(let pid, let version):
            return "process \(pid) runs a free-threaded (no-GIL) Python \(version), which pytap does not read yet"
        }
    }
}

/// A read of one of the interpreter's structures failed: which structure, at which address, and why.
public struct StructureReadError: Error, CustomStringConvertible, Sendable {
    /// What was being read, e.g. "thread state", "interpreter list".
    public var what: String
    public var address: UInt64
    public var cause: MemoryReadError

    public init(what: String, address: UInt64, cause: MemoryReadError) {
        self.what = what
        self.address = address
        self.cause = cause
    }

    public var description: String { "cannot read the \(what) at \(hexAddress(address)): \(cause)" }
}

/// Runs a read of `what` at `address`, turning a memory error into one that says what was read.
func reading<T>(_ what: String, at address: UInt64, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as MemoryReadError {
        throw StructureReadError(what: what, address: address, cause: error)
    }
}

/// The memory error behind `error`, looking through `StructureReadError`: to tell a process
/// that is gone from other failures.
public func memoryReadError(in error: Error) -> MemoryReadError? {
    (error as? StructureReadError)?.cause ?? error as? MemoryReadError
}
