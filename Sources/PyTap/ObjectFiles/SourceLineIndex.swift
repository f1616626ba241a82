import Synchronization

/// Source lines and inlined calls of one object file, from its DWARF (`.debug_info`,
/// `.debug_line`, `.debug_ranges`/`.debug_rnglists`; the file itself or its separate debug
/// file, dwz supplementary files followed). Which unit holds an address comes from
/// `.debug_aranges` where it lists the unit (else from the unit's root DIE); a compile unit
/// is read on the first lookup of an address in it: its abbreviations, its line program,
/// and the ranges of its functions and inlined calls. Nothing else of a large file is
/// decoded. Malformed DWARF gives no answer for that unit, never a trap.
public final class SourceLineIndex: @unchecked Sendable {
    let context: DWARFContext
    private let line: DWARFSectionData
    private let rangeReader: DWARFRangeReader
    /// Compile units by address range: (low, high, unit index), sorted by low.
    private let unitRanges: [(low: UInt64, high: UInt64, unit: Int)]
    private let units = Mutex<[Int: UnitInfo?]>([:])
    /// The unit headers and ranges came from the cache directory (`DWARFUnitIndexFile`).
    let unitsFromCache: Bool
    /// Where units read whole are kept as tables (`SourceLineUnitTableFile`); nil: none are,
    /// and lookups read only the scopes on the way to their address.
    private let tableDirectory: CacheDirectory?
    private let elf: ELFFile
    private let supplementaryFile: ELFFile?
    /// Units answered from a table (nil: the unit could not be read whole).
    private let tables = Mutex<[Int: (any SourceLineUnitLookup)?]>([:])

    /// A function or an inlined call: its ranges, nesting depth, DIE and call site. The
    /// name is read from the DIE only for the scopes a lookup returns (most are never hit).
    struct Scope {
        var ranges: [(low: UInt64, high: UInt64)]
        var depth: Int
        var die: DWARFDIEReference
        var callFile: Int?
        var callLine: Int?
        var isInlined: Bool

        func contains(_ address: UInt64) -> Bool { ranges.contains { address >= $0.low && address < $0.high } }
    }

    /// A unit read so far: its line program, and its scopes once it has been read whole.
    /// The first lookups in a unit search only the scopes on the way to their address and
    /// run the line program without keeping its rows (a `dump --native` names a few pcs per
    /// unit); after `directedLookups` of them (a sampler names many) the whole unit's scopes
    /// and line rows are read once and searched from then on.
    struct UnitInfo {
        var lines: DWARFLineProgram?
        var root: DWARFDIE
        var bases: UnitBases
        var scopes: [Scope]?
        var lookups = 0
    }

    /// Directed lookups per unit before it is read whole (tests set 0: read whole at once).
    var directedLookups = 32

    /// Compile-unit root attributes that decide how its other attributes are read.
    struct UnitBases {
        var lowPC: UInt64 = 0
        var addrBase: Int = 8
        var rnglistsBase: Int = 12
        var version: Int
        var addressSize: Int
        var offsetSize: Int
    }

    static let maximumScopesPerUnit = 2_000_000

    /// `directory`: where the unit headers and ranges are kept between runs
    /// (`DWARFUnitIndexFile`); nil: read from the DWARF every time.
    public init?(elf: ELFFile, directory: CacheDirectory? = nil) {
        guard elf.section(named: ".debug_info") != nil, elf.section(named: ".debug_line") != nil,
              let (main, supplementaryFile, supplementary) = try? DWARFContext.objects(of: elf) else { return nil }
        let objects = supplementary.map { [main, $0] } ?? [main]
        let stored = directory.flatMap { DWARFUnitIndexFile.load(from: $0, elf: elf, supplementary: supplementaryFile, objects: objects) }
        guard let context = try? DWARFContext(main: main, supplementary: supplementary, supplementaryNote: nil, lazy: true,
                                              headers: stored?.units) else { return nil }
        self.context = context
        unitsFromCache = stored != nil
        tableDirectory = directory
        self.elf = elf
        self.supplementaryFile = supplementaryFile
        func load(_ name: String, _ kind: DWARFSectionKind) -> DWARFSectionData {
            guard let section = elf.section(named: name), let data = try? DWARFSectionData(kind: kind, elf: elf, section: section)
            else { return DWARFSectionData(empty: kind) }
            return data
        }
        line = load(".debug_line", .line)
        let rangeReader = DWARFRangeReader(ranges: load(".debug_ranges", .ranges), rnglists: load(".debug_rnglists", .rnglists),
                                           addr: load(".debug_addr", .addr))
        self.rangeReader = rangeReader
        if let stored {
            unitRanges = stored.ranges
            return
        }
        unitRanges = SourceLineIndex.unitRanges(context: context, rangeReader: rangeReader,
                                                aranges: load(".debug_aranges", .aranges))
        if let directory {
            DWARFUnitIndexFile.store(units: context.units, ranges: unitRanges, in: directory, elf: elf,
                                     supplementary: supplementaryFile, objects: objects)
        }
    }

    /// Compile units by address range, sorted by low address: from `.debug_aranges` where it
    /// lists the unit, else from the unit's root DIE.
    private static func unitRanges(context: DWARFContext, rangeReader: DWARFRangeReader,
                                   aranges: DWARFSectionData) -> [(low: UInt64, high: UInt64, unit: Int)] {
        var unitRanges = [(low: UInt64, high: UInt64, unit: Int)]()
        var listed = Set<Int>()
        for range in DWARFAddressRangeTable.ranges(in: aranges) where range.high > range.low {
            guard let unit = context.infoUnit(atOffset: range.unitOffset) else { continue }
            unitRanges.append((range.low, range.high, unit))
            listed.insert(unit)
        }
        for (index, unit) in context.units.enumerated()
        where !listed.contains(index) && unit.object == 0 && unit.section == .info && unit.unitType == DWARFConstant.UnitType.compile {
            guard let root = try? context.readDIE(DWARFDIEReference(unit: index, offset: unit.firstDIEOffset)) else { continue }
            let bases = SourceLineIndex.bases(of: root, unit: unit)
            for range in (try? rangeReader.scopeRanges(of: root, bases: bases)) ?? [] where range.high > range.low {
                unitRanges.append((range.low, range.high, index))
            }
        }
        unitRanges.sort { $0.low < $1.low }
        return unitRanges
    }

    private static func bases(of root: DWARFDIE, unit: DWARFUnit) -> UnitBases {
        typealias A = DWARFConstant.Attribute
        var bases = UnitBases(version: unit.version, addressSize: unit.addressSize, offsetSize: unit.offsetSize)
        if let low = root.value(A.lowPC), low.form == DWARFConstant.Form.addr { bases.lowPC = low.value }
        if let base = root.value(A.addrBase) { bases.addrBase = Int(clamping: base.value) }
        if let base = root.value(A.rnglistsBase) { bases.rnglistsBase = Int(clamping: base.value) }
        return bases
    }

    /// The functions at a link-time address, inlined calls innermost first, then the
    /// function the code belongs to; each with the source line the address is at in it.
    public func functions(at address: UInt64) -> [SourceFunction] {
        guard let unitIndex = unit(containing: address) else { return [] }
        if let table = unitTable(unitIndex) { return table.functions(at: address) }
        guard var info = unitInfo(unitIndex) else { return [] }
        if info.scopes == nil, let whole = countLookup(in: unitIndex) { info = whole }
        let chain: [Scope]
        if let scopes = info.scopes {
            chain = scopes.filter { $0.contains(address) }.sorted { $0.depth > $1.depth }
        } else {
            var path = [Scope]()
            _ = try? findScopes(containing: address, in: info.root, depth: 0, bases: info.bases, into: &path)
            chain = path.reversed()
        }
        // Innermost scope first; each scope's line is where the address is in it: the line
        // table's for the innermost, the call site of the scope inside it for the others.
        var result = [SourceFunction]()
        var location = info.lines?.streamedLocation(at: address)
        for scope in chain {
            let name = (try? context.readDIE(scope.die)).flatMap { try? self.name(of: $0) } ?? "??"
            result.append(SourceFunction(name: name, file: location?.file, line: location?.line))
            if !scope.isInlined { break }
            location = scope.callLine.map { (scope.callFile.flatMap { info.lines?.files[$0] }, $0) }
        }
        if result.isEmpty, let location {
            return [SourceFunction(name: "??", file: location.file, line: location.line)]
        }
        return result
    }

    /// The unit's table, from the cache directory or (stored there) from its DWARF read
    /// whole; nil without a directory or when the unit cannot be read whole.
    private func unitTable(_ index: Int) -> (any SourceLineUnitLookup)? {
        guard let directory = tableDirectory else { return nil }
        if let known = tables.withLock({ $0[index] }) { return known }
        let key = SourceLineUnitTableFile.Key(elf: elf, supplementary: supplementaryFile, unit: index,
                                              unitOffset: context.units[index].offset)
        var table: (any SourceLineUnitLookup)? = SourceLineUnitTableFile.load(from: directory, key)
        if table == nil, let built = wholeUnitTable(index) {
            SourceLineUnitTableFile.store(built, in: directory, key)
            table = built
        }
        tables.withLock { $0[index] = .some(table) }
        return table
    }

    /// The unit read whole: every scope (named now) and every line row.
    func wholeUnitTable(_ index: Int) -> SourceLineUnitTable? {
        guard var info = unitInfo(index) else { return nil }
        var scopes = [Scope]()
        guard (try? collectScopes(in: info.root, depth: 0, bases: info.bases, into: &scopes)) != nil else { return nil }
        if (try? info.lines?.runIntoRows()) == nil { info.lines = nil }
        let named = scopes.map { scope in
            let name = (try? context.readDIE(scope.die)).flatMap { try? self.name(of: $0) } ?? "??"
            return SourceLineUnitTable.Scope(ranges: scope.ranges.map { .init(low: $0.low, high: $0.high) }, depth: scope.depth,
                                             name: name, callFile: scope.callFile, callLine: scope.callLine,
                                             isInlined: scope.isInlined)
        }
        return SourceLineUnitTable(rows: info.lines?.rows ?? [], files: info.lines?.files ?? [:], scopes: named)
    }

    func unit(containing address: UInt64) -> Int? {
        guard let last = unitRanges.lastIndex(withKeyAtMost: address, key: { $0.low }) else { return nil }
        // Ranges of different units do not overlap; look back a little in case they nest.
        var index = last
        while index >= 0 && index >= last - 7 {
            if address < unitRanges[index].high { return unitRanges[index].unit }
            index -= 1
        }
        return nil
    }

    private func unitInfo(_ index: Int) -> UnitInfo? {
        if let cached = units.withLock({ $0[index] }) { return cached }
        let info = try? readUnit(index)
        units.withLock { $0[index] = .some(info) }
        return info
    }

    /// Counts a directed lookup; past `directedLookups` of them the unit's scopes are read
    /// whole, and the unit as it is then returned.
    private func countLookup(in index: Int) -> UnitInfo? {
        let due = units.withLock { entries -> Bool in
            guard case .some(.some(var info)) = entries[index], info.scopes == nil else { return false }
            info.lookups += 1
            entries[index] = info
            return info.lookups - 1 == directedLookups
        }
        guard due, var info = unitInfo(index) else { return nil }
        var scopes = [Scope]()
        // A unit that cannot be read whole keeps its directed lookups.
        guard (try? collectScopes(in: info.root, depth: 0, bases: info.bases, into: &scopes)) != nil else { return nil }
        info.scopes = scopes
        if (try? info.lines?.runIntoRows()) == nil { info.lines = nil }
        units.withLock { $0[index] = .some(info) }
        return info
    }

    private func readUnit(_ index: Int) throws -> UnitInfo {
        typealias A = DWARFConstant.Attribute
        let unit = context.units[index]
        let root = try context.readDIE(DWARFDIEReference(unit: index, offset: unit.firstDIEOffset))
        let bases = SourceLineIndex.bases(of: root, unit: unit)
        var lines: DWARFLineProgram?
        if let statementList = root.value(A.stmtList), statementList.value < UInt64(line.count) {
            let directory = try root.value(A.compDir).flatMap { try context.string($0, unit: index) }
            lines = try? DWARFLineProgram(section: line, offset: Int(statementList.value), addressSize: unit.addressSize,
                                          compilationDirectory: directory, rows: false) { form, value in
                try self.context.string(DWARFAttributeValue(form: form, value: value, dataOffset: 0), unit: index)
            }
        }
        return UnitInfo(lines: lines, root: root, bases: bases)
    }

    /// The scopes (functions, inlined calls) holding `address`, outermost first, found by
    /// descending only into the scopes that hold it (and lexical blocks and namespaces that
    /// may): true when a function or inlined call at this level held it.
    private func findScopes(containing address: UInt64, in die: DWARFDIE, depth: Int, bases: UnitBases,
                            into path: inout [Scope]) throws -> Bool {
        typealias T = DWARFConstant.Tag
        typealias A = DWARFConstant.Attribute
        guard depth < 64 else { return false }
        var found = false
        let scopeTags = [T.subprogram, T.inlinedSubroutine, T.lexicalBlock, T.namespace]
        try context.forEachChild(of: die, wanted: { scopeTags.contains($0) }) { child in
            let isFunction = child.tag == T.subprogram, isInlined = child.tag == T.inlinedSubroutine
            if isFunction || isInlined {
                let ranges = try rangeReader.scopeRanges(of: child, bases: bases)
                guard ranges.contains(where: { address >= $0.low && address < $0.high }) else { return false }
                path.append(Scope(ranges: ranges, depth: depth, die: child.reference,
                                  callFile: child.value(A.callFile).map { Int(clamping: $0.value) },
                                  callLine: child.value(A.callLine).map { Int(clamping: $0.value) },
                                  isInlined: isInlined))
                _ = try findScopes(containing: address, in: child, depth: depth + 1, bases: bases, into: &path)
                found = true
                return true
            }
            if child.tag == T.lexicalBlock {
                let ranges = try rangeReader.scopeRanges(of: child, bases: bases)
                if !ranges.isEmpty && !ranges.contains(where: { address >= $0.low && address < $0.high }) { return false }
            } else if child.tag != T.namespace {
                return false
            }
            found = try findScopes(containing: address, in: child, depth: depth + 1, bases: bases, into: &path)
            return found
        }
        return found
    }

    private func collectScopes(in die: DWARFDIE, depth: Int, bases: UnitBases, into scopes: inout [Scope]) throws {
        typealias T = DWARFConstant.Tag
        typealias A = DWARFConstant.Attribute
        guard depth < 64 else { return }
        try context.forEachChild(of: die) { child in
            let isFunction = child.tag == T.subprogram, isInlined = child.tag == T.inlinedSubroutine
            if isFunction || isInlined {
                let ranges = try rangeReader.scopeRanges(of: child, bases: bases)
                if !ranges.isEmpty, scopes.count < SourceLineIndex.maximumScopesPerUnit {
                    scopes.append(Scope(ranges: ranges, depth: depth, die: child.reference,
                                        callFile: child.value(A.callFile).map { Int(clamping: $0.value) },
                                        callLine: child.value(A.callLine).map { Int(clamping: $0.value) },
                                        isInlined: isInlined))
                }
            }
            if isFunction || isInlined || child.tag == T.lexicalBlock || child.tag == T.namespace {
                try collectScopes(in: child, depth: depth + 1, bases: bases, into: &scopes)
            }
            return false
        }
    }

    /// DW_AT_name, through DW_AT_abstract_origin and DW_AT_specification.
    private func name(of die: DWARFDIE) throws -> String? {
        typealias A = DWARFConstant.Attribute
        var current = die
        for _ in 0..<8 {
            if let name = try context.name(of: current) { return name }
            guard let link = current.value(A.abstractOrigin) ?? current.value(A.specification) else { return nil }
            current = try context.readDIE(try context.reference(link, from: current.unit))
        }
        return nil
    }

}

/// Reads the address ranges of DIEs: low_pc/high_pc, `.debug_ranges` (DWARF 2–4) and
/// `.debug_rnglists` (DWARF 5), addresses indexed through `.debug_addr`.
struct DWARFRangeReader {
    let ranges: DWARFSectionData
    let rnglists: DWARFSectionData
    let addr: DWARFSectionData

    /// The address ranges of a DIE: low_pc/high_pc, or DW_AT_ranges.
    func scopeRanges(of die: DWARFDIE, bases: SourceLineIndex.UnitBases) throws -> [(low: UInt64, high: UInt64)] {
        typealias A = DWARFConstant.Attribute
        typealias F = DWARFConstant.Form
        if let lowValue = die.value(A.lowPC), let highValue = die.value(A.highPC) {
            let low = try address(lowValue, bases: bases)
            let high = highValue.form == F.addr || isAddressIndex(highValue.form) ? try address(highValue, bases: bases)
                : low &+ highValue.value
            return [(low, high)]
        }
        guard let rangesValue = die.value(A.ranges) else { return [] }
        if bases.version >= 5 {
            var offset = rangesValue.value
            if rangesValue.form == F.rnglistx {
                var cursor = rnglists.cursor(at: bases.rnglistsBase + Int(clamping: offset) * bases.offsetSize)
                offset = UInt64(bases.rnglistsBase) &+ (try cursor.sectionOffset(size: bases.offsetSize))
            }
            return try rangeList(at: offset, bases: bases)
        }
        return try legacyRanges(at: rangesValue.value, bases: bases)
    }

    func isAddressIndex(_ form: UInt64) -> Bool {
        typealias F = DWARFConstant.Form
        return [F.addrx, F.addrx1, F.addrx2, F.addrx3, F.addrx4, F.gnuAddrIndex].contains(form)
    }

    func address(_ value: DWARFAttributeValue, bases: SourceLineIndex.UnitBases) throws -> UInt64 {
        isAddressIndex(value.form) ? try indexedAddress(value.value, bases: bases) : value.value
    }

    func indexedAddress(_ index: UInt64, bases: SourceLineIndex.UnitBases) throws -> UInt64 {
        guard index < UInt64(Int32.max) else { throw DWARFError.malformed("address index \(index)") }
        var cursor = addr.cursor(at: bases.addrBase + Int(index) * bases.addressSize)
        return try cursor.unsigned(size: bases.addressSize)
    }

    /// A DWARF 5 range list (.debug_rnglists).
    func rangeList(at offset: UInt64, bases: SourceLineIndex.UnitBases) throws -> [(low: UInt64, high: UInt64)] {
        guard offset < UInt64(rnglists.count) else { throw DWARFError.truncated(section: rnglists.kind.name, offset: Int(clamping: offset)) }
        var cursor = rnglists.cursor(at: Int(offset))
        var base = bases.lowPC
        var result = [(low: UInt64, high: UInt64)]()
        for _ in 0..<100_000 {
            switch try cursor.u8() {
            case 0: return result
            case 1: base = try indexedAddress(try cursor.uleb128(), bases: bases)
            case 2: result.append((try indexedAddress(try cursor.uleb128(), bases: bases), try indexedAddress(try cursor.uleb128(), bases: bases)))
            case 3:
                let start = try indexedAddress(try cursor.uleb128(), bases: bases)
                result.append((start, start &+ (try cursor.uleb128())))
            case 4:
                let start = try cursor.uleb128(), end = try cursor.uleb128()
                result.append((base &+ start, base &+ end))
            case 5: base = try cursor.unsigned(size: bases.addressSize)
            case 6: result.append((try cursor.unsigned(size: bases.addressSize), try cursor.unsigned(size: bases.addressSize)))
            case 7:
                let start = try cursor.unsigned(size: bases.addressSize)
                result.append((start, start &+ (try cursor.uleb128())))
            case let kind: throw DWARFError.malformed("range list entry kind \(kind)")
            }
        }
        throw DWARFError.malformed("range list too long")
    }

    /// A DWARF 2–4 range list (.debug_ranges): address pairs relative to the unit's base.
    func legacyRanges(at offset: UInt64, bases: SourceLineIndex.UnitBases) throws -> [(low: UInt64, high: UInt64)] {
        guard offset < UInt64(ranges.count) else { throw DWARFError.truncated(section: ranges.kind.name, offset: Int(clamping: offset)) }
        var cursor = ranges.cursor(at: Int(offset))
        var base = bases.lowPC
        let selector: UInt64 = bases.addressSize == 8 ? .max : 0xffff_ffff
        var result = [(low: UInt64, high: UInt64)]()
        for _ in 0..<100_000 {
            let start = try cursor.unsigned(size: bases.addressSize), end = try cursor.unsigned(size: bases.addressSize)
            if start == 0 && end == 0 { return result }
            if start == selector { base = end; continue }
            result.append((base &+ start, base &+ end))
        }
        throw DWARFError.malformed("range list too long")
    }
}

/// Source line indexes shared across processes, keyed by build-id; nil (cached too) for a
/// file without DWARF.
public final class SourceLineIndexCache: Sendable {
    private let indexes = Mutex<[String: SourceLineIndex?]>([:])
    /// Where each index's unit headers and ranges are kept between runs.
    public let directory: CacheDirectory?

    public init(directory: CacheDirectory? = .shared) {
        self.directory = directory
    }

    public func index(for object: LoadedObject) -> SourceLineIndex? {
        let key = object.elf.cacheKey
        if let cached = indexes.withLock({ $0[key] }) { return cached }
        let dwarfFile = object.elf.section(named: ".debug_info") != nil ? object.elf : object.debugFile
        let index = dwarfFile.flatMap { SourceLineIndex(elf: $0, directory: directory) }
        return indexes.withLock { entries in
            if let raced = entries[key] { return raced }
            entries[key] = .some(index)
            return index
        }
    }
}

extension DWARFContext {
    /// The DWARF of an ELF file, with its dwz supplementary file when found.
    static func forFile(_ elf: ELFFile, lazy: Bool = false) throws -> DWARFContext {
        let (main, _, supplementary) = try objects(of: elf)
        return try DWARFContext(main: main, supplementary: supplementary, supplementaryNote: nil, lazy: lazy)
    }

    /// The DWARF sections of an ELF file and of its dwz supplementary file when found.
    static func objects(of elf: ELFFile) throws -> (DWARFObject, ELFFile?, DWARFObject?) {
        let main = try DWARFObject(elf: elf)
        guard let link = DWARFSupplementaryLink(elf: elf), let file = link.locate(forFileAt: elf.path) else { return (main, nil, nil) }
        return (main, file, try DWARFObject(elf: file))
    }
}

/// `.debug_aranges`: for each compile unit that has a set, the address ranges of its code.
enum DWARFAddressRangeTable {
    struct Range {
        var low: UInt64
        var high: UInt64
        /// Offset of the unit's header in `.debug_info`.
        var unitOffset: Int
    }

    /// Every range of every well-formed set; a malformed set ends the reading (units it
    /// would have listed are then found through their root DIEs).
    static func ranges(in data: DWARFSectionData) -> [Range] {
        var result = [Range]()
        var offset = 0
        while offset < data.count {
            var cursor = data.cursor(at: offset)
            guard let (end, unitOffset, addressSize, tuplesStart) = try? header(&cursor, setStart: offset), end <= data.count else { break }
            var tuples = data.cursor(at: tuplesStart, end: end)
            while let low = try? tuples.unsigned(size: addressSize), let length = try? tuples.unsigned(size: addressSize) {
                if low == 0 && length == 0 { break }
                result.append(Range(low: low, high: low &+ length, unitOffset: unitOffset))
            }
            offset = end
        }
        return result
    }

    /// A set's header: where the set ends, its unit, its address size, where its tuples start
    /// (aligned to twice the address size from the set's start).
    private static func header(_ cursor: inout DWARFCursor, setStart: Int) throws -> (Int, Int, Int, Int) {
        var length = UInt64(try cursor.u32())
        var offsetSize = 4
        if length == 0xffff_ffff {
            length = try cursor.u64()
            offsetSize = 8
        }
        guard length <= UInt64(Int32.max) else { throw DWARFError.malformed("aranges set length") }
        let end = cursor.offset + Int(length)
        guard try cursor.u16() == 2 else { throw DWARFError.malformed("aranges version") }
        let unitOffset = try cursor.sectionOffset(size: offsetSize)
        let addressSize = Int(try cursor.u8())
        guard try cursor.u8() == 0, addressSize == 4 || addressSize == 8, unitOffset <= UInt64(Int32.max) else {
            throw DWARFError.malformed("aranges set header")
        }
        let tupleSize = 2 * addressSize
        let relative = cursor.offset - setStart
        return (end, Int(unitOffset), addressSize, setStart + (relative + tupleSize - 1) / tupleSize * tupleSize)
    }
}
