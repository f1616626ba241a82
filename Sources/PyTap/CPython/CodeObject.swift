/// What pytap keeps of a code object: names, file, first line and its decoded line table.
/// A class: the cache hands out references, not copies of its strings and table.
public final class CodeObject: Sendable {
    public let address: UInt64
    public let name: String
    public let qualname: String
    public let filename: String
    public let firstLine: Int
    public let lineTable: LineTable
    /// Address of the first instruction (3.11+: inside the code object).
    public let instructionsStart: UInt64
    /// 3.11+: instructions before this code-unit index are the frame's prologue (not yet "complete").
    public let firstTraceable: Int
    /// 3.11+: length of the bytecode in bytes (the code object's ob_size code units).
    public let instructionBytes: Int?
    /// `CodeIdentity` read with the code object; a changed one means the address was reused.
    let fingerprint: [UInt64]

    init(address: UInt64, name: String, qualname: String, filename: String, firstLine: Int, lineTable: LineTable,
         instructionsStart: UInt64, firstTraceable: Int, instructionBytes: Int?, fingerprint: [UInt64]) {
        self.address = address
        self.name = name
        self.qualname = qualname
        self.filename = filename
        self.firstLine = firstLine
        self.lineTable = lineTable
        self.instructionsStart = instructionsStart
        self.firstTraceable = firstTraceable
        self.instructionBytes = instructionBytes
        self.fingerprint = fingerprint
    }

    /// The line of an instruction at byte offset `offset` from the start of the bytecode.
    public func line(atByteOffset offset: Int) -> Int? {
        lineTable.line(atByteOffset: offset)
    }
}

/// Code objects by address, read once. A freed code object's address is soon reused by
/// another (code made and dropped at a high rate: exec, namedtuple, templates), so every
/// cached entry a walk uses is proven to be the same object again after the walk
/// (`checkIdentity`, one batched read); the sampler also re-checks all entries every 2 s.
public final class CodeObjectCache {
    private let objects: ObjectReader
    private let layout: PythonLayout
    private var entries: [UInt64: CodeObject] = [:]
    /// Known not to be code objects (e.g. 3.14 shim frames' executables); forgotten by `revalidate`.
    private var rejected: Set<UInt64> = []
    /// Bytes of a code object's header a first read takes.
    let headerSize: Int
    let identity: CodeIdentity
    /// Cached entries handed out since `beginUse`, to be checked by `checkIdentity`.
    private var used: [UInt64] = []
    /// Addresses dropped as reused since `takeDropped`, for caches built on this one.
    private var dropped: [UInt64] = []
    /// Address of the `code` type, when known, to verify candidates.
    public var codeType: UInt64?
    /// Set when `objects` reads copies made at an earlier instant (the BPF sampler's), of
    /// code headers among others: a code object's name, file and line table are then read
    /// live, later, so it must still be the object the copies show — its identity read
    /// live after them must match the copies' — or the walk is a torn one.
    public var liveMemory: RemoteMemory?

    public static let maximumEntries = 1 << 18

    public init(objects: ObjectReader, layout: PythonLayout) throws {
        self.objects = objects
        self.layout = layout
        var fields: [LayoutField] = [.objectType, .varObjectSize, .codeFilename, .codeName, .codeFirstLineno, .codeLineTable]
        if layout[.codeQualname] != nil { fields.append(.codeQualname) }
        if layout[.codeFirstTraceable] != nil { fields.append(.codeFirstTraceable) }
        var end = 0
        for field in fields { end = max(end, try layout.require(field) + 8) }
        headerSize = end
        identity = try CodeIdentity(layout: layout)
    }

    public var count: Int { entries.count }

    /// The code object at `address`, reading it on first use.
    /// An address once found not to hold a code object is read again here: a frame says a
    /// code object is there (a torn read may have seen the memory before it was one).
    public func code(at address: UInt64) throws -> CodeObject {
        if let cached = entries[address] { return cached }
        guard let code = try read(address) else {
            throw ObjectReadError.unexpectedType(expected: "code", found: (try? objects.typeNameOf(address)) ?? "?")
        }
        rejected.remove(address)
        remember(code)
        return code
    }

    /// The code object at `address`, or nil when the object there is not a code object
    /// (checked against the `code` type when known; 3.12+ shim frames hold other objects).
    public func codeIfCode(at address: UInt64) throws -> CodeObject? {
        if let cached = entries[address] {
            used.append(address)
            return cached
        }
        if rejected.contains(address) { return nil }
        guard let code = try read(address) else {
            if rejected.count < CodeObjectCache.maximumEntries { rejected.insert(address) }
            return nil
        }
        remember(code)
        return code
    }

    private func remember(_ code: CodeObject) {
        if entries.count >= CodeObjectCache.maximumEntries {
            dropped.append(contentsOf: entries.keys)
            entries.removeAll(keepingCapacity: true)
        }
        entries[code.address] = code
    }

    private func read(_ address: UInt64) throws -> CodeObject? {
        objectsRead &+= 1
        let head = try objects.memory.readStruct(address, count: headerSize)
        if let codeType, try head.pointer(try layout.require(.objectType)) != codeType { return nil }
        let filenamePointer = try head.pointer(try layout.require(.codeFilename))
        let namePointer = try head.pointer(try layout.require(.codeName))
        let name = try objects.string(namePointer, maximumLength: CodeObjectCache.maximumNameLength, truncating: true)
        var qualname = name
        if let offset = layout[.codeQualname] {
            qualname = try objects.string(try head.pointer(offset), maximumLength: CodeObjectCache.maximumNameLength, truncating: true)
        }
        let filename = try objects.string(filenamePointer, maximumLength: CodeObjectCache.maximumFilenameLength, truncating: true)
        let firstLine = Int(try head.i32(try layout.require(.codeFirstLineno)))
        let tablePointer = try head.pointer(try layout.require(.codeLineTable))
        let tableBytes = try objects.bytes(tablePointer)
        var instructionsStart: UInt64 = 0
        var instructionBytes: Int?
        if let offset = layout[.codeCodeAdaptive] {
            instructionsStart = address &+ UInt64(offset)
            // 3.11+ code objects are variable-size: ob_size counts code units.
            let units = try head.i64(try layout.require(.varObjectSize))
            guard units >= 0, units < 1 << 24 else { throw ObjectReadError.implausible(what: "code units", value: units) }
            instructionBytes = Int(units) * (try layout.require(.codeUnitSize))
        }
        var firstTraceable = 0
        if let offset = layout[.codeFirstTraceable] { firstTraceable = Int(try head.i32(offset)) }
        // The identity is read after the object, so a change in between shows at the next check.
        let fingerprint = try identity.fingerprint(ofCodeAt: address, memory: objects.memory) ?? []
        if let liveMemory, try identity.fingerprint(ofCodeAt: address, memory: liveMemory) != fingerprint {
            throw StackChangedWhileRead()
        }
        return CodeObject(address: address, name: name, qualname: qualname, filename: filename, firstLine: firstLine,
                          lineTable: LineTable(format: layout.traits.lineTable, bytes: tableBytes, firstLine: firstLine),
                          instructionsStart: instructionsStart, firstTraceable: firstTraceable, instructionBytes: instructionBytes,
                          fingerprint: fingerprint)
    }

    /// Longest name and filename kept; longer ones are cut and end in "…".
    public static let maximumNameLength = 1024
    public static let maximumFilenameLength = 4096

    /// Starts a walk: forgets which cached entries were used.
    public func beginUse() { used.removeAll(keepingCapacity: true) }

    /// Objects read (as code objects or not) so far: a walk that read one read memory
    /// outside its batch.
    public private(set) var objectsRead = 0

    /// The cached entries handed out since `beginUse`.
    public var usedSinceBeginUse: [UInt64] { used }

    /// Checks that the cached entries used since `beginUse`, and those at `addresses`, are
    /// still the objects they were read as (one batched read); entries that are not are
    /// dropped. Returns how many were dropped: the walk that used them must be repeated.
    /// Throws `MemoryReadError.processGone` when the target is gone.
    public func checkIdentity(alsoOf addresses: some Sequence<UInt64>) throws -> Int {
        try checkIdentity(alsoOf: addresses, alongWith: nil).dropped
    }

    /// `checkIdentity(alsoOf:)`, with one more range read in the same system call, after
    /// the identities (the sampler's re-read of the live innermost frame): its result, or
    /// nil when no identity needed checking and nothing was read.
    public func checkIdentity(alsoOf addresses: some Sequence<UInt64>, alongWith extra: (address: UInt64, count: Int)?)
        throws -> (dropped: Int, extra: Result<[UInt8], MemoryReadError>?) {
        var candidates = used
        for address in addresses where entries[address] != nil { candidates.append(address) }
        used.removeAll(keepingCapacity: true)
        if candidates.isEmpty { return (0, nil) }
        var unique = Set<UInt64>(minimumCapacity: candidates.count)
        return try dropChanged(candidates.filter { unique.insert($0).inserted }, alongWith: extra)
    }

    /// Drops entries whose identity changed (address reused by another object); one
    /// batched read for all entries. Returns how many were dropped.
    @discardableResult
    public func revalidate() -> Int {
        rejected.removeAll(keepingCapacity: true)
        return (try? dropChanged(Array(entries.keys), alongWith: nil).dropped) ?? 0
    }

    /// Addresses dropped since the last call (so decoded frames of them can be forgotten).
    public func takeDropped() -> [UInt64] {
        defer { dropped.removeAll(keepingCapacity: true) }
        return dropped
    }

    /// `checkIdentity(alsoOf:alongWith:)` answered from identities read ahead (in the walk's
    /// own batch, after the frames it walked): nil, and nothing is dropped, when a
    /// candidate was not among them (a code object read or re-cached during the walk), so
    /// the caller checks with a read of its own.
    public func checkIdentity(alsoOf addresses: some Sequence<UInt64>, readAhead: IdentitiesReadAhead) -> Int? {
        if readAhead.processGone { return nil }
        // A few code objects a walk: sorted arrays and binary search, no hashing (perf).
        var candidates = used
        for address in addresses where entries[address] != nil { candidates.append(address) }
        var checked = [Bool](repeating: false, count: readAhead.codes.count)
        for address in candidates {
            guard let index = readAhead.index(of: address), entries[address] === readAhead.codes[index] else { return nil }
            checked[index] = true
        }
        used.removeAll(keepingCapacity: true)
        var count = 0
        for (index, code) in readAhead.codes.enumerated() where checked[index] && readAhead.identities[index] != code.fingerprint {
            entries[code.address] = nil
            dropped.append(code.address)
            count += 1
        }
        return count
    }

    /// The cached entries at `addresses` and the ranges that read their identities, to be
    /// read ahead in another batch (see `checkIdentity(alsoOf:readAhead:)`).
    /// `addresses` must be sorted and unique (as `IdentitiesReadAhead` keeps them).
    public func identityRanges(of addresses: [UInt64]) -> (codes: [CodeObject], ranges: [(address: UInt64, count: Int)]) {
        let cached = addresses.compactMap { entries[$0] }
        return (cached, identity.ranges(of: cached))
    }

    /// The identities of `codes` from the results of reading `identityRanges`' ranges.
    public func identitiesReadAhead(of codes: [CodeObject], from results: ArraySlice<Result<[UInt8], MemoryReadError>>)
        -> IdentitiesReadAhead {
        var processGone = false
        for case .failure(.processGone) in results { processGone = true }
        return IdentitiesReadAhead(codes: codes, identities: identity.identities(of: codes, from: results), processGone: processGone)
    }

    private func dropChanged(_ addresses: [UInt64], alongWith extra: (address: UInt64, count: Int)?)
        throws -> (dropped: Int, extra: Result<[UInt8], MemoryReadError>?) {
        var count = 0
        let cached = addresses.compactMap { entries[$0] }
        let (current, extraRead) = try identity.fingerprints(of: cached, memory: objects.memory, alongWith: extra)
        for (entry, fingerprint) in zip(cached, current) where fingerprint != entry.fingerprint {
            entries[entry.address] = nil
            dropped.append(entry.address)
            count += 1
        }
        return (count, extraRead)
    }
}

/// Identities of cached code objects read ahead of a check; `codes` by address.
public struct IdentitiesReadAhead {
    let codes: [CodeObject]
    let identities: [[UInt64]?]
    let processGone: Bool

    func index(of address: UInt64) -> Int? {
        var low = 0, high = codes.count
        while low < high {
            let middle = (low + high) / 2
            if codes[middle].address < address { low = middle + 1 } else { high = middle }
        }
        return low < codes.count && codes[low].address == address ? low : nil
    }
}

/// What tells one code object from another that took its address: its type, its name,
/// qualname, filename and line-table pointers, first line and size, and the header of the
/// name and line-table objects (type, length, hash), since those are freed and reused
/// along with the code object: three small reads per object. On 3.12+ the code object's
/// `co_version` (a counter's value when it was made) tells it from any later one, so the
/// code header alone is read (one range per object) — unless the counter ran out (0).
struct CodeIdentity {
    private let codeFields: [(offset: Int, bytes: Int)]
    /// Bytes of a code object's header its identity reads.
    let codeSpan: Int
    let nameOffset: Int
    let tableOffset: Int
    let typeOffset: Int
    /// Index of `co_version` in a fingerprint, when the layout has it.
    private let versionIndex: Int?
    /// Words after the type pointer read of the name (length, hash) and table (size).
    static let nameWords = 3
    static let tableWords = 2

    init(layout: PythonLayout) throws {
        typeOffset = layout[.objectType] ?? 8
        nameOffset = try layout.require(.codeName)
        tableOffset = try layout.require(.codeLineTable)
        var fields: [(offset: Int, bytes: Int)] = [(typeOffset, 8), (try layout.require(.varObjectSize), 8),
                                                    (try layout.require(.codeFilename), 8), (nameOffset, 8),
                                                    (tableOffset, 8), (try layout.require(.codeFirstLineno), 4)]
        if let qualname = layout[.codeQualname] { fields.append((qualname, 8)) }
        if let version = layout[.codeVersion] {
            versionIndex = fields.count
            fields.append((version, 4))
        } else {
            versionIndex = nil
        }
        codeFields = fields
        codeSpan = fields.map { $0.offset + $0.bytes }.max() ?? 0
    }

    /// Whether the code header alone can prove identity (the layout has `co_version`).
    var headerCanSuffice: Bool { versionIndex != nil }

    /// Whether a fingerprint's code header alone proves identity (it carries a nonzero `co_version`).
    private func headerSuffices(_ fingerprint: [UInt64]) -> Bool {
        guard let versionIndex, versionIndex < fingerprint.count else { return false }
        return fingerprint[versionIndex] != 0
    }

    /// The identity of the code object at `address` now, nil if part of it is unreadable.
    func fingerprint(ofCodeAt address: UInt64, memory: RemoteMemory) throws -> [UInt64]? {
        let head = try memory.readStruct(address, count: codeSpan)
        guard let words = codeWords(head.bytes) else { return nil }
        if headerSuffices(words) { return words }
        let name = try head.pointer(nameOffset)
        let table = try head.pointer(tableOffset)
        let reads = memory.readMany([(name &+ UInt64(typeOffset), 8 * CodeIdentity.nameWords),
                                     (table &+ UInt64(typeOffset), 8 * CodeIdentity.tableWords)])
        return combine(words, name: reads[0], table: reads[1])
    }

    /// Identities of `codes` now (nil where unreadable), by the pointers their cached identity holds.
    /// `extra` is read last in the same batch; its result is returned as is.
    func fingerprints(of codes: [CodeObject], memory: RemoteMemory, alongWith extra: (address: UInt64, count: Int)? = nil)
        throws -> (identities: [[UInt64]?], extra: Result<[UInt8], MemoryReadError>?) {
        var ranges = self.ranges(of: codes)
        if let extra { ranges.append(extra) }
        let results = memory.readMany(ranges)
        for case .failure(.processGone) in results { throw MemoryReadError.processGone }
        return (identities(of: codes, from: results[...]), extra == nil ? nil : results.last)
    }

    /// The ranges `fingerprints` reads for `codes`: 1 or 3 per code object.
    func ranges(of codes: [CodeObject]) -> [(address: UInt64, count: Int)] {
        var ranges = [(address: UInt64, count: Int)]()
        ranges.reserveCapacity(codes.count * 3 + 1)
        for code in codes {
            ranges.append((code.address, codeSpan))
            if headerSuffices(code.fingerprint) { continue }
            // Name and table objects where the cached code object had them: if the code
            // object still points there, these are its name and table now.
            let name = code.fingerprint.count > 3 ? code.fingerprint[3] : 0
            let table = code.fingerprint.count > 4 ? code.fingerprint[4] : 0
            ranges.append((name &+ UInt64(typeOffset), 8 * CodeIdentity.nameWords))
            ranges.append((table &+ UInt64(typeOffset), 8 * CodeIdentity.tableWords))
        }
        return ranges
    }

    /// The identities of `codes` from the results of reading `ranges(of: codes)`.
    func identities(of codes: [CodeObject], from results: ArraySlice<Result<[UInt8], MemoryReadError>>) -> [[UInt64]?] {
        var next = results.startIndex
        return codes.map { code -> [UInt64]? in
            let head = results[next]
            next += 1
            guard case .success(let bytes) = head, let words = codeWords(bytes) else {
                if !headerSuffices(code.fingerprint) { next += 2 }
                return nil
            }
            if headerSuffices(code.fingerprint) { return words }
            defer { next += 2 }
            return combine(words, name: results[next], table: results[next + 1])
        }
    }

    /// The identity fields of a code object's header.
    private func codeWords(_ code: [UInt8]) -> [UInt64]? {
        let head = RemoteBytes(address: 0, bytes: code)
        var words = [UInt64]()
        words.reserveCapacity(codeFields.count + CodeIdentity.nameWords + CodeIdentity.tableWords)
        for field in codeFields {
            guard let value = try? (field.bytes == 8 ? head.u64(field.offset) : UInt64(head.u32(field.offset))) else { return nil }
            words.append(value)
        }
        return words
    }

    /// A code header's identity with the name's and line table's headers.
    private func combine(_ codeWords: [UInt64], name: Result<[UInt8], MemoryReadError>,
                         table: Result<[UInt8], MemoryReadError>) -> [UInt64]? {
        guard case .success(let nameHead) = name, case .success(let tableHead) = table else { return nil }
        var words = codeWords
        for bytes in [nameHead, tableHead] {
            let copy = RemoteBytes(address: 0, bytes: bytes)
            for index in 0..<(bytes.count / 8) {
                guard let value = try? copy.u64(8 * index) else { return nil }
                words.append(value)
            }
        }
        return words
    }
}
