/// The DWARF sections of one object file: the main file, or its dwz supplementary file.
final class DWARFObject {
    /// For messages; "<sections>" when built from bytes.
    let path: String
    let info: DWARFSectionData
    let types: DWARFSectionData
    let abbrev: DWARFSectionData
    let str: DWARFSectionData
    let lineStr: DWARFSectionData
    let strOffsets: DWARFSectionData

    init(sections: DWARFSections) {
        path = "<sections>"
        info = DWARFSectionData(kind: .info, copying: sections.info)
        types = DWARFSectionData(kind: .types, copying: sections.types)
        abbrev = DWARFSectionData(kind: .abbrev, copying: sections.abbrev)
        str = DWARFSectionData(kind: .str, copying: sections.str)
        lineStr = DWARFSectionData(kind: .lineStr, copying: sections.lineStr)
        strOffsets = DWARFSectionData(kind: .strOffsets, copying: sections.strOffsets)
    }

    init(elf: ELFFile) throws {
        path = elf.path
        func load(_ name: String, _ kind: DWARFSectionKind, required: Bool = false) throws -> DWARFSectionData {
            guard let section = elf.section(named: name) else {
                if required { throw DWARFError.missingSection("\(name) in \(elf.path)") }
                return DWARFSectionData(empty: kind)
            }
            return try DWARFSectionData(kind: kind, elf: elf, section: section)
        }
        info = try load(".debug_info", .info, required: true)
        abbrev = try load(".debug_abbrev", .abbrev, required: true)
        types = try load(".debug_types", .types)
        str = try load(".debug_str", .str)
        lineStr = try load(".debug_line_str", .lineStr)
        strOffsets = try load(".debug_str_offsets", .strOffsets)
    }

    /// The section a unit of kind `.info` or `.types` lives in.
    func unitSection(_ kind: DWARFSectionKind) -> DWARFSectionData {
        kind == .types ? types : info
    }
}
