/// The DWARF sections the type reader and the unwinder use, named for error messages.
enum DWARFSectionKind: UInt8, Sendable {
    case info, types, abbrev, str, lineStr, strOffsets, sup
    case ehFrame, ehFrameHeader, debugFrame
    case line, ranges, rnglists, addr, aranges
    /// A DWARF expression inside a CFI program.
    case expression

    var name: String {
        switch self {
        case .info: return ".debug_info"
        case .types: return ".debug_types"
        case .abbrev: return ".debug_abbrev"
        case .str: return ".debug_str"
        case .lineStr: return ".debug_line_str"
        case .strOffsets: return ".debug_str_offsets"
        case .sup: return ".debug_sup"
        case .ehFrame: return ".eh_frame"
        case .ehFrameHeader: return ".eh_frame_hdr"
        case .debugFrame: return ".debug_frame"
        case .expression: return "a CFI expression"
        case .line: return ".debug_line"
        case .ranges: return ".debug_ranges"
        case .rnglists: return ".debug_rnglists"
        case .addr: return ".debug_addr"
        case .aranges: return ".debug_aranges"
        }
    }
}
