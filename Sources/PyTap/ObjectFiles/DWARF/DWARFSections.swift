/// The raw bytes of the DWARF sections the type reader uses, for building a `DWARFTypes`
/// without an ELF file (tests, or sections obtained some other way). Absent sections are empty.
public struct DWARFSections: Sendable {
    public var info: [UInt8]
    public var abbrev: [UInt8]
    public var str: [UInt8]
    public var lineStr: [UInt8]
    public var strOffsets: [UInt8]
    /// DWARF 4 type units (-fdebug-types-section); DWARF 5 keeps them in .debug_info.
    public var types: [UInt8]

    public init(info: [UInt8], abbrev: [UInt8], str: [UInt8] = [], lineStr: [UInt8] = [],
                strOffsets: [UInt8] = [], types: [UInt8] = []) {
        self.info = info
        self.abbrev = abbrev
        self.str = str
        self.lineStr = lineStr
        self.strOffsets = strOffsets
        self.types = types
    }
}
