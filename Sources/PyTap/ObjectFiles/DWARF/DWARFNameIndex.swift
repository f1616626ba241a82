/// Where each named type, typedef, base type and enumerator is defined, keyed by a hash of
/// its name. Built in one pass over every unit; only DIEs that can name a type are decoded,
/// everything else (functions, variables, struct bodies in C) is skipped, by DW_AT_sibling
/// when present. Names are hashed straight from the section bytes: no Strings are built.
struct DWARFNameIndex {
    enum Kind: UInt64 {
        case typedef = 0
        /// struct, union, class and enum tags (one namespace in C).
        case tag = 1
        case baseType = 2
        case enumerator = 3
    }

    struct Entry {
        var offset: Int
        var unit: Int32
        /// Previous entry with the same key, -1 at the end of the chain.
        var next: Int32
        /// For enumerators: offset of the enumeration type DIE (same unit); -1 otherwise.
        var parentOffset: Int
    }

    private(set) var entries: [Entry] = []
    private var heads: [UInt64: Int32] = [:]

    /// Definitions of `name` of the given kind, in file order (main file before supplementary).
    /// Hash collisions are possible: callers compare the actual names.
    func candidates(named name: String, kind: Kind) -> [Entry] {
        guard var index = heads[Self.key(Self.hash(Array(name.utf8)), kind)] else { return [] }
        var found: [Entry] = []
        while index >= 0, Int(index) < entries.count {
            found.append(entries[Int(index)])
            index = entries[Int(index)].next
        }
        return found.reversed()
    }

    var count: Int { entries.count }

    private static func key(_ hash: UInt64, _ kind: Kind) -> UInt64 { (hash & ~3) | kind.rawValue }

    private static let hashSeed: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let hashPrime: UInt64 = 0x0000_0100_0000_01b3

    /// FNV-1a, 64-bit, of a name being looked up.
    static func hash(_ bytes: [UInt8]) -> UInt64 {
        var hash = hashSeed
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* hashPrime }
        return hash
    }

    /// The same hash of the NUL-terminated string at `offset`, computed while looking for
    /// the NUL (the indexer's hot path: one pass, no String, no generics).
    static func hashCString(in data: DWARFSectionData, at offset: Int) throws -> UInt64 {
        let bytes = data.bytes
        guard offset >= 0 else { throw DWARFError.truncated(section: data.kind.name, offset: offset) }
        var hash = hashSeed
        var position = offset
        while position < bytes.count {
            let byte = bytes[position]
            if byte == 0 { return hash }
            hash = (hash ^ UInt64(byte)) &* hashPrime
            position += 1
        }
        throw DWARFError.truncated(section: data.kind.name, offset: position)
    }

    private mutating func add(hash: UInt64, kind: Kind, offset: Int, unit: Int, parentOffset: Int) {
        let key = Self.key(hash, kind)
        entries.append(Entry(offset: offset, unit: Int32(truncatingIfNeeded: unit), next: heads[key] ?? -1, parentOffset: parentOffset))
        heads[key] = Int32(truncatingIfNeeded: entries.count - 1)
    }

    // MARK: Building

    /// What the children of the DIE being walked may hold.
    private enum Scope {
        /// Unit or namespace level: type DIEs to index.
        case types
        /// Inside an enumeration type at this offset: enumerators to index.
        case enumeration(Int)
        /// Inside something else (a function, a C struct body): nothing to index.
        case skip
    }

    init(context: DWARFContext) throws {
        guard context.units.count < Int(Int32.max) else { throw DWARFError.malformed("too many units") }
        for unitIndex in context.units.indices {
            try index(unit: unitIndex, context: context)
        }
    }

    private mutating func index(unit unitIndex: Int, context: DWARFContext) throws {
        typealias Tag = DWARFConstant.Tag
        typealias Attribute = DWARFConstant.Attribute
        let unit = context.units[unitIndex]
        let table = try context.abbreviationTable(ofUnit: unitIndex)
        let data = context.section(of: unit)
        // C struct bodies hold only members; C++ ones may nest types.
        let structBodiesHoldTypes = !DWARFConstant.isCLanguage(unit.language)
        var cursor = data.cursor(at: unit.firstDIEOffset, end: unit.end)
        var scopes: [Scope] = []
        let dense = table.denseIndex
        let abbreviations = table.allAbbreviations
        while !cursor.isAtEnd {
            let dieOffset = cursor.offset
            let code = try cursor.uleb128()
            if code == 0 {
                if !scopes.isEmpty { scopes.removeLast() }
                continue
            }
            let abbreviation: DWARFAbbreviation
            if code < UInt64(dense.count), dense[Int(code)] >= 0 {
                abbreviation = abbreviations[Int(dense[Int(code)])]
            } else if dense.isEmpty, let found = table.abbreviation(for: code) {
                abbreviation = found
            } else {
                throw DWARFError.malformed("unknown abbreviation \(code) at \(data.kind.name)+0x\(String(dieOffset, radix: 16))")
            }
            let tag = abbreviation.tag
            let scope = scopes.isEmpty ? Scope.types : scopes[scopes.count - 1]
            var kind: Kind?
            var enumerationOffset = -1
            switch scope {
            case .types:
                switch tag {
                case Tag.typedef: kind = .typedef
                case Tag.structureType, Tag.unionType, Tag.classType, Tag.enumerationType: kind = .tag
                case Tag.baseType: kind = .baseType
                default: kind = nil
                }
            case .enumeration(let offset):
                if tag == Tag.enumerator {
                    kind = .enumerator
                    enumerationOffset = offset
                }
            case .skip:
                kind = nil
            }

            guard let kind else {
                // Not indexed: skip the attributes, and the children unless they may hold types.
                let descend = abbreviation.hasChildren && Self.isScopeIndexed(scope) && Self.holdsTypes(tag)
                if abbreviation.hasChildren && !descend && abbreviation.siblingOffset >= 0 {
                    // Fast path: read DW_AT_sibling where it sits and jump past the subtree.
                    let attributesStart = cursor.offset
                    try cursor.skip(abbreviation.siblingOffset)
                    let spec = DWARFAttributeSpec(attribute: Attribute.sibling, form: abbreviation.siblingForm, implicitConst: 0, fixedSize: 0)
                    let sibling = try DWARFForms.read(spec, &cursor, unit)
                    if let target = context.siblingTarget(sibling, unit: unit), target > attributesStart {
                        cursor.offset = target
                        continue
                    }
                    cursor.offset = attributesStart
                }
                if abbreviation.fixedSize >= 0 {
                    try cursor.skip(abbreviation.fixedSize)
                    if abbreviation.hasChildren { scopes.append(descend ? .types : .skip) }
                    continue
                }
                var siblingTarget = -1
                for index in abbreviation.firstAttribute..<(abbreviation.firstAttribute + abbreviation.attributeCount) {
                    let spec = table.attributes[index]
                    if spec.fixedSize >= 0 {
                        try cursor.skip(spec.fixedSize)
                    } else if spec.attribute == Attribute.sibling {
                        let value = try DWARFForms.read(spec, &cursor, unit)
                        siblingTarget = context.siblingTarget(value, unit: unit) ?? -1
                    } else {
                        try DWARFForms.skip(spec.form, &cursor, unit)
                    }
                }
                if abbreviation.hasChildren {
                    if !descend && siblingTarget > dieOffset {
                        cursor.offset = siblingTarget
                    } else {
                        scopes.append(descend ? .types : .skip)
                    }
                }
                continue
            }

            // A DIE that may name something: hash its name, note declarations.
            var nameHash: UInt64?
            var isDeclaration = false
            var siblingTarget = -1
            for index in abbreviation.firstAttribute..<(abbreviation.firstAttribute + abbreviation.attributeCount) {
                let spec = table.attributes[index]
                switch spec.attribute {
                case Attribute.name:
                    let value = try DWARFForms.read(spec, &cursor, unit)
                    if let (strings, offset) = try context.stringLocation(value, unit: unit) {
                        nameHash = try Self.hashCString(in: strings, at: offset)
                    }
                case Attribute.declaration:
                    isDeclaration = try DWARFForms.read(spec, &cursor, unit).value != 0
                case Attribute.sibling:
                    let value = try DWARFForms.read(spec, &cursor, unit)
                    siblingTarget = context.siblingTarget(value, unit: unit) ?? -1
                default:
                    if spec.fixedSize >= 0 {
                        try cursor.skip(spec.fixedSize)
                    } else {
                        try DWARFForms.skip(spec.form, &cursor, unit)
                    }
                }
            }
            if let nameHash, !isDeclaration {
                add(hash: nameHash, kind: kind, offset: dieOffset, unit: unitIndex, parentOffset: enumerationOffset)
            }
            if abbreviation.hasChildren {
                if tag == Tag.enumerationType {
                    scopes.append(.enumeration(dieOffset))
                } else if kind == .tag && structBodiesHoldTypes {
                    scopes.append(.types)
                } else if siblingTarget > dieOffset {
                    cursor.offset = siblingTarget
                } else {
                    scopes.append(.skip)
                }
            }
        }
    }

    private static func isScopeIndexed(_ scope: Scope) -> Bool {
        if case .types = scope { return true }
        return false
    }

    /// Non-type DIEs whose children are at type scope.
    private static func holdsTypes(_ tag: UInt64) -> Bool {
        typealias Tag = DWARFConstant.Tag
        switch tag {
        case Tag.compileUnit, Tag.partialUnit, Tag.typeUnit, Tag.skeletonUnit, Tag.namespace, Tag.module: return true
        default: return false
        }
    }
}
