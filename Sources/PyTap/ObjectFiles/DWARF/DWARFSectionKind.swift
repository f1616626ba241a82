/// The DWARF sections the type reader uses, named for error messages.
enum DWARFSectionKind: UInt8, Sendable {
    case info, types, abbrev, str, lineStr, strOffsets, sup

    var name: String {
        switch self {
        case .info: return ".debug_info"
        case .types: return ".debug_types"
        case .abbrev: return ".debug_abbrev"
        case .str: return ".debug_str"
        case .lineStr: return ".debug_line_str"
        case .strOffsets: return ".debug_str_offsets"
        case .sup: return ".debug_sup"
        }
    }
}
