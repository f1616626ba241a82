import Synchronization

/// Types of an object file's DWARF (.debug_info, .debug_abbrev, .debug_str,
/// .debug_line_str, .debug_str_offsets, and .debug_types if any), enough to answer layout
/// questions: member offsets, type sizes and enumerator values, in the path notation of
/// `LayoutTables` (see `resolve(_:)`).
///
/// Reads DWARF 2 to 5, 32- and 64-bit, and follows dwz supplementary files. The file is
/// untrusted: malformed data makes calls throw, never trap. Sections are loaded when the
/// reader is made; the name index is built on the first query.
///
/// Sendable: everything is immutable after `init` except the lazily built index, which a
/// mutex guards (a second caller waits for the first one's build instead of repeating it).
public final class DWARFTypes: @unchecked Sendable {
    private let context: DWARFContext
    private let cachedIndex = Mutex<DWARFNameIndex?>(nil)
    /// The dwz supplementary file that was found and loaded, if the file names one.
    public let supplementaryFilePath: String?

    /// The DWARF of `elf`, plus its supplementary file when it has a .gnu_debugaltlink (or
    /// .debug_sup) and the file is found; a missing one only matters if a query needs it.
    public convenience init(elf: ELFFile) throws {
        let main = try DWARFObject(elf: elf)
        var supplementary: DWARFObject?
        var note: String?
        if let link = DWARFSupplementaryLink(elf: elf) {
            if let file = link.locate(forFileAt: elf.path) {
                supplementary = try DWARFObject(elf: file)
            } else {
                note = "\(link.name) (build-id \(link.buildIDHex)), named by \(elf.path)"
            }
        }
        try self.init(context: DWARFContext(main: main, supplementary: supplementary, supplementaryNote: note),
                      supplementaryFilePath: supplementary?.path)
    }

    /// DWARF given as section bytes, e.g. assembled by a test.
    public convenience init(sections: DWARFSections, supplementary: DWARFSections? = nil) throws {
        guard !sections.info.isEmpty else { throw DWARFError.missingSection(".debug_info") }
        let context = try DWARFContext(main: DWARFObject(sections: sections),
                                       supplementary: supplementary.map { DWARFObject(sections: $0) },
                                       supplementaryNote: nil)
        try self.init(context: context, supplementaryFilePath: nil)
    }

    private init(context: DWARFContext, supplementaryFilePath: String?) throws {
        self.context = context
        self.supplementaryFilePath = supplementaryFilePath
    }

    /// Number of units (compile, partial and type units) in the file and its supplementary file.
    public var unitCount: Int { context.units.count }

    /// Resolves a layout path:
    ///   "Type.member.member" -> byte offset of the (nested) member from the start of Type
    ///   "struct tag.member"  -> the same, with Type named by its struct tag (also union, enum)
    ///   "sizeof(Type)"       -> byte size of Type
    ///   "enum(NAME)"         -> value of enumerator NAME
    /// A plain type name is looked up as a typedef, else a struct/union/enum tag, else a base
    /// type; declarations are completed with their definition. Member lookup follows
    /// typedefs and qualifiers and sees through anonymous struct/union members. For a
    /// bitfield, the offset is that of its storage unit (see `bitOffset(_:)`).
    public func resolve(_ path: String) throws -> Int {
        switch try DWARFLayoutPath(parsing: path) {
        case .memberOffset(let type, let members):
            return try placement(of: members, in: type).byteOffset
        case .size(let type):
            return try size(of: type)
        case .enumerator(let name):
            return try enumeratorValue(name)
        }
    }

    /// The bit offset of a member from the start of the outermost type of a
    /// `Type.member…` path: for bitfields, from DW_AT_data_bit_offset (DWARF 4+) or from
    /// DW_AT_bit_offset and the storage unit's size (DWARF 2/3, counted from the most
    /// significant bit, converted for little-endian); for other members, 8 × the byte offset.
    public func bitOffset(_ path: String) throws -> Int {
        guard case .memberOffset(let type, let members) = try DWARFLayoutPath(parsing: path) else {
            throw DWARFError.badPath(path)
        }
        return try placement(of: members, in: type).bitOffset
    }

    // MARK: Index

    private func nameIndex() throws -> DWARFNameIndex {
        try cachedIndex.withLock { cached in
            if let cached { return cached }
            let built = try DWARFNameIndex(context: context)
            cached = built
            return built
        }
    }

    /// Number of names indexed; builds the index if needed (for diagnostics and tests).
    public func indexedNameCount() throws -> Int { try nameIndex().count }

    /// The first definition named `name` of one kind, optionally restricted to some tags.
    private func firstDefinition(_ name: String, kind: DWARFNameIndex.Kind, tags: [UInt64]? = nil) throws -> DWARFDIE? {
        let wanted = Array(name.utf8)
        for entry in try nameIndex().candidates(named: name, kind: kind) {
            let die = try context.readDIE(DWARFDIEReference(unit: Int(entry.unit), offset: entry.offset))
            if let tags, !tags.contains(die.tag) { continue }
            if try context.nameEquals(die, wanted), !die.isDeclaration { return die }
        }
        return nil
    }

    /// The DIE a type name denotes: typedef first, then tag, then base type.
    private func findType(_ type: DWARFTypeName) throws -> DWARFDIE {
        typealias Tag = DWARFConstant.Tag
        let found: DWARFDIE?
        switch type.keyword {
        case .struct?: found = try firstDefinition(type.name, kind: .tag, tags: [Tag.structureType, Tag.classType])
        case .union?: found = try firstDefinition(type.name, kind: .tag, tags: [Tag.unionType])
        case .enum?: found = try firstDefinition(type.name, kind: .tag, tags: [Tag.enumerationType])
        case nil:
            if let typedef = try firstDefinition(type.name, kind: .typedef) {
                found = typedef
            } else if let tagged = try firstDefinition(type.name, kind: .tag) {
                found = tagged
            } else {
                found = try firstDefinition(type.name, kind: .baseType)
            }
        }
        guard let found else { throw DWARFError.typeNotFound(type.description) }
        return found
    }

    // MARK: Types

    /// Follows typedefs and qualifiers to the type itself, completing declarations;
    /// nil for void.
    private func underlyingType(_ die: DWARFDIE) throws -> DWARFDIE? {
        typealias Tag = DWARFConstant.Tag
        var current = die
        for _ in 0..<64 {
            switch current.tag {
            case Tag.typedef, Tag.constType, Tag.volatileType, Tag.restrictType, Tag.atomicType, Tag.sharedType,
                 Tag.immutableType, Tag.packedType:
                guard let target = current.value(DWARFConstant.Attribute.type) else { return nil }
                current = try context.readDIE(context.reference(target, from: current.unit))
            default:
                return current.isDeclaration ? try definition(of: current) : current
            }
        }
        throw DWARFError.malformed("typedef chain too long at offset 0x\(String(die.offset, radix: 16))")
    }

    /// The full definition of a declared (incomplete) struct, union or enum: through its
    /// type-unit signature, else by tag name elsewhere in the file.
    private func definition(of declaration: DWARFDIE) throws -> DWARFDIE {
        if let signature = declaration.value(DWARFConstant.Attribute.signature) {
            let die = try context.readDIE(context.reference(signature, from: declaration.unit))
            if !die.isDeclaration { return die }
        }
        guard let name = try context.name(of: declaration) else {
            throw DWARFError.incompleteType("<anonymous> at offset 0x\(String(declaration.offset, radix: 16))")
        }
        guard let found = try firstDefinition(name, kind: .tag, tags: [declaration.tag]) else {
            throw DWARFError.incompleteType(name)
        }
        return found
    }

    private func typeOf(_ die: DWARFDIE) throws -> DWARFDIE? {
        guard let target = die.value(DWARFConstant.Attribute.type) else { return nil }
        return try underlyingType(context.readDIE(context.reference(target, from: die.unit)))
    }

    private func size(of type: DWARFTypeName) throws -> Int {
        guard let die = try underlyingType(try findType(type)) else { throw DWARFError.noSize(type.description) }
        return try byteSize(of: die, named: type.description, depth: 0)
    }

    private func byteSize(of die: DWARFDIE, named name: String, depth: Int) throws -> Int {
        typealias Tag = DWARFConstant.Tag
        if let value = die.value(DWARFConstant.Attribute.byteSize), let size = DWARFForms.constant(value) {
            guard size >= 0, size < 1 << 40 else { throw DWARFError.malformed("byte size \(size) of \(name)") }
            return Int(size)
        }
        switch die.tag {
        case Tag.pointerType, Tag.referenceType, Tag.rvalueReferenceType:
            return context.units[die.unit].addressSize
        case Tag.arrayType where depth < 16:
            guard let element = try typeOf(die) else { throw DWARFError.noSize(name) }
            var size = try byteSize(of: element, named: name, depth: depth + 1)
            try context.forEachChild(of: die) { child in
                guard child.tag == Tag.subrangeType else { return false }
                let count = try elementCount(of: child, named: name)
                let (product, overflow) = size.multipliedReportingOverflow(by: count)
                guard !overflow, product < 1 << 40 else { throw DWARFError.malformed("array size of \(name) overflows") }
                size = product
                return false
            }
            return size
        default:
            throw DWARFError.noSize(name)
        }
    }

    private func elementCount(of subrange: DWARFDIE, named name: String) throws -> Int {
        typealias Attribute = DWARFConstant.Attribute
        if let count = subrange.value(Attribute.count).flatMap(DWARFForms.constant) {
            guard count >= 0, count < 1 << 40 else { throw DWARFError.malformed("array count \(count) in \(name)") }
            return Int(count)
        }
        guard let upper = subrange.value(Attribute.upperBound).flatMap(DWARFForms.constant) else {
            return 0 // flexible array member: contributes nothing, as in sizeof
        }
        let lower = subrange.value(Attribute.lowerBound).flatMap(DWARFForms.constant) ?? 0
        // upper == lower - 1 is an empty array; anything outside [0, 2^40) elements is nonsense.
        let (span, overflow) = upper.subtractingReportingOverflow(lower)
        guard !overflow, span >= -1, span < 1 << 40 else { throw DWARFError.malformed("array bounds \(lower)...\(upper) in \(name)") }
        return Int(span + 1)
    }

    // MARK: Members

    /// Offset of a member from the start of the type that contains it.
    private struct Placement {
        var byteOffset: Int
        /// From the start of the containing type, in bits (differs from 8 × byteOffset only for bitfields).
        var bitOffset: Int

        /// `inner`, a placement inside the member placed at `self`, made relative to the outer type.
        func adding(_ inner: Placement) -> Placement {
            Placement(byteOffset: byteOffset + inner.byteOffset, bitOffset: byteOffset * 8 + inner.bitOffset)
        }
    }

    private func placement(of members: [String], in type: DWARFTypeName) throws -> Placement {
        var current = try underlyingType(try findType(type))
        var described = type.description
        var total = Placement(byteOffset: 0, bitOffset: 0)
        for (position, name) in members.enumerated() {
            guard let structure = current, structure.isStructLike else {
                throw DWARFError.notAStructure(type: described, member: name)
            }
            var budget = Self.memberVisitBudget
            guard let (placement, member) = try findMember(Array(name.utf8), in: structure, depth: 0, budget: &budget) else {
                throw DWARFError.memberNotFound(type: described, member: name)
            }
            total = total.adding(placement)
            described += "." + name
            if position + 1 < members.count { current = try typeOf(member) }
        }
        return total
    }

    /// Members a single lookup may visit. Anonymous members nest, and a hostile file could
    /// nest one type in itself many times over; real structs need a few hundred at most.
    private static let memberVisitBudget = 100_000

    /// The member named `wanted` of a struct or union, looking through anonymous members.
    private func findMember(_ wanted: [UInt8], in structure: DWARFDIE, depth: Int, budget: inout Int) throws -> (Placement, DWARFDIE)? {
        var found: (Placement, DWARFDIE)?
        var remaining = budget
        defer { budget = remaining }
        try context.forEachChild(of: structure) { child in
            remaining -= 1
            guard remaining > 0 else {
                throw DWARFError.malformed("member lookup in the struct at offset 0x\(String(structure.offset, radix: 16)) visits too many members")
            }
            guard child.tag == DWARFConstant.Tag.member else { return false }
            if child.has(DWARFConstant.Attribute.name) {
                guard try context.nameEquals(child, wanted) else { return false }
                found = (try placement(of: child), child)
                return true
            }
            // An anonymous struct or union member: its members belong to the enclosing type.
            guard depth < 32, let inner = try typeOf(child), inner.isStructLike,
                  let (innerPlacement, member) = try findMember(wanted, in: inner, depth: depth + 1, budget: &remaining) else { return false }
            found = (try placement(of: child).adding(innerPlacement), member)
            return true
        }
        return found
    }

    private func placement(of member: DWARFDIE) throws -> Placement {
        typealias Attribute = DWARFConstant.Attribute
        var byteOffset = 0
        if let location = member.value(Attribute.dataMemberLocation) {
            if let constant = DWARFForms.constant(location) {
                byteOffset = try Self.bounded(constant, member)
            } else if DWARFForms.isBlock(location.form) {
                byteOffset = try Self.bounded(Int64(DWARFLocationExpression.memberOffset(context.blockBytes(location, unit: member.unit))), member)
            } else {
                throw DWARFError.malformed("DW_AT_data_member_location of form 0x\(String(location.form, radix: 16)) at offset 0x\(String(member.offset, radix: 16))")
            }
        }
        if let dataBitOffset = member.value(Attribute.dataBitOffset).flatMap(DWARFForms.constant) {
            // DWARF 4+: bits from the start of the containing type; the storage unit is the
            // aligned unit of the member's (declared) type that holds the first bit.
            let bits = byteOffset * 8 + (try Self.bounded(dataBitOffset, member))
            let storage = max(try storageSize(of: member), 1)
            return Placement(byteOffset: bits >= 0 ? bits / (storage * 8) * storage : byteOffset, bitOffset: bits)
        }
        if let bitOffset = member.value(Attribute.bitOffset).flatMap(DWARFForms.constant),
           let bitSize = member.value(Attribute.bitSize).flatMap(DWARFForms.constant) {
            // DWARF 2/3: the storage unit is at data_member_location and bit_offset counts
            // from its most significant bit; on little-endian the first bit is at
            // storage bits - bit_offset - bit_size from the unit's start.
            let storage = try storageSize(of: member)
            let fromLeastSignificant = storage * 8 - (try Self.bounded(bitOffset, member)) - (try Self.bounded(bitSize, member))
            return Placement(byteOffset: byteOffset, bitOffset: byteOffset * 8 + fromLeastSignificant)
        }
        return Placement(byteOffset: byteOffset, bitOffset: byteOffset * 8)
    }

    /// Offsets beyond ±2^40 are nonsense; refusing them keeps the arithmetic above from overflowing.
    private static func bounded(_ value: Int64, _ member: DWARFDIE) throws -> Int {
        guard value > -(1 << 40), value < 1 << 40 else {
            throw DWARFError.malformed("member offset \(value) at offset 0x\(String(member.offset, radix: 16))")
        }
        return Int(value)
    }

    /// A bitfield's storage unit size: DW_AT_byte_size on the member, else its type's size.
    private func storageSize(of member: DWARFDIE) throws -> Int {
        if let size = member.value(DWARFConstant.Attribute.byteSize).flatMap(DWARFForms.constant), size > 0, size <= 64 {
            return Int(size)
        }
        guard let type = try typeOf(member) else { return 1 }
        let size = try byteSize(of: type, named: "bitfield type", depth: 0)
        guard size > 0, size <= 64 else { throw DWARFError.malformed("bitfield storage of \(size) bytes") }
        return size
    }

    // MARK: Enumerators

    private func enumeratorValue(_ name: String) throws -> Int {
        let wanted = Array(name.utf8)
        for entry in try nameIndex().candidates(named: name, kind: .enumerator) {
            let die = try context.readDIE(DWARFDIEReference(unit: Int(entry.unit), offset: entry.offset))
            guard try context.nameEquals(die, wanted) else { continue }
            guard let raw = die.value(DWARFConstant.Attribute.constValue), var value = DWARFForms.constant(raw) else {
                throw DWARFError.malformed("enumerator \(name) has no constant value")
            }
            // data1/2/4 hold the value's low bytes; the enum's underlying type says whether it is negative.
            if let width = DWARFForms.dataWidth(raw.form), width < 8, entry.parentOffset >= 0,
               try enumerationIsSigned(DWARFDIEReference(unit: Int(entry.unit), offset: entry.parentOffset)) {
                let shift = Int64(64 - 8 * width)
                value = (value << shift) >> shift
            }
            return Int(truncatingIfNeeded: value)
        }
        throw DWARFError.enumeratorNotFound(name)
    }

    private func enumerationIsSigned(_ reference: DWARFDIEReference) throws -> Bool {
        let enumeration = try context.readDIE(reference)
        guard let base = try typeOf(enumeration),
              let encoding = base.value(DWARFConstant.Attribute.encoding)?.value else { return false }
        return encoding == DWARFConstant.BaseTypeEncoding.signed || encoding == DWARFConstant.BaseTypeEncoding.signedChar
    }
}
