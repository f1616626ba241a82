/// Why a DWARF type question could not be answered: the debug info is missing or
/// malformed, or it does not describe what the layout path asks for.
public enum DWARFError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A section the reader needs is absent (e.g. a stripped file has no .debug_info).
    case missingSection(String)
    /// A read would run past the end of a section or unit.
    case truncated(section: String, offset: Int)
    /// Something is structurally wrong; the text says what and where.
    case malformed(String)
    /// An attribute uses a form this reader does not know how to size, so the DIE cannot be skipped.
    case unsupportedForm(form: UInt64, section: String, offset: Int)
    /// A DIE refers into the supplementary (dwz) file, which was not found.
    case supplementaryFileMissing(String)
    /// The layout path is not of the form `Type.member…`, `struct tag.member…`, `sizeof(Type)` or `enum(NAME)`.
    case badPath(String)
    case typeNotFound(String)
    case memberNotFound(type: String, member: String)
    case enumeratorNotFound(String)
    /// A path goes through a member whose type is not a struct or union (e.g. a pointer).
    case notAStructure(type: String, member: String)
    /// Only a declaration of the type exists (an opaque struct).
    case incompleteType(String)
    /// The type has no byte size the reader can compute.
    case noSize(String)

    public var description: String {
        switch self {
        case .missingSection(let name): return "DWARF: no \(name) section"
        case .truncated(let section, let offset): return "DWARF: truncated \(section) at offset 0x\(String(offset, radix: 16))"
        case .malformed(let what): return "DWARF: malformed debug info: \(what)"
        case .unsupportedForm(let form, let section, let offset):
            return "DWARF: unsupported attribute form 0x\(String(form, radix: 16)) in \(section) at offset 0x\(String(offset, radix: 16))"
        case .supplementaryFileMissing(let what): return "DWARF: the supplementary (dwz) file is needed but was not found: \(what)"
        case .badPath(let path): return "DWARF: bad layout path '\(path)'"
        case .typeNotFound(let name): return "DWARF: no type named '\(name)'"
        case .memberNotFound(let type, let member): return "DWARF: type '\(type)' has no member '\(member)'"
        case .enumeratorNotFound(let name): return "DWARF: no enumerator named '\(name)'"
        case .notAStructure(let type, let member): return "DWARF: member '\(member)' of '\(type)' is not a struct or union"
        case .incompleteType(let name): return "DWARF: only a declaration of '\(name)' exists"
        case .noSize(let name): return "DWARF: type '\(name)' has no known size"
        }
    }
}
