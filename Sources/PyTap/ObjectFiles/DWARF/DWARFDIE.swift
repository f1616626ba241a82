/// Where a DIE is: the index of its unit in `DWARFContext.units` and its offset in the
/// unit's section.
struct DWARFDIEReference: Hashable {
    var unit: Int
    var offset: Int
}

/// One attribute of a decoded DIE.
struct DWARFAttribute {
    var name: UInt64
    var value: DWARFAttributeValue
}

/// A decoded debugging information entry: its tag and raw attribute values. Decoded only
/// on the lookup path (a few hundred per query); the indexer never builds these.
struct DWARFDIE {
    var reference: DWARFDIEReference
    var tag: UInt64
    var hasChildren: Bool
    var attributes: [DWARFAttribute]
    /// Offset just past the attributes: the first child, or the next DIE when childless.
    var childrenOffset: Int

    var unit: Int { reference.unit }
    var offset: Int { reference.offset }

    func value(_ attribute: UInt64) -> DWARFAttributeValue? {
        for entry in attributes where entry.name == attribute { return entry.value }
        return nil
    }

    func has(_ attribute: UInt64) -> Bool { value(attribute) != nil }

    /// DW_AT_declaration set: an incomplete type whose definition lives elsewhere.
    var isDeclaration: Bool { (value(DWARFConstant.Attribute.declaration)?.value ?? 0) != 0 }

    var isStructLike: Bool {
        tag == DWARFConstant.Tag.structureType || tag == DWARFConstant.Tag.unionType || tag == DWARFConstant.Tag.classType
    }
}
