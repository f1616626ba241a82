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
    /// Pointers read with the code object; a changed fingerprint means the address was reused.
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

/// Code objects by address, read once. Entries are re-validated in batches by the sampler
/// (a freed code object's address can be reused by another one).
public final class CodeObjectCache {
    private let objects: ObjectReader
    private let layout: PythonLayout
    private var entries: [UInt64: CodeObject] = [:]
    /// Known not to be code objects (e.g. 3.14 shim frames' executables).
    private var rejected: Set<UInt64> = []
    private let headerSize: Int
    private let fingerprintOffsets: [Int]
    /// Address of the `code` type, when known, to verify candidates.
    public var codeType: UInt64?

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
        fingerprintOffsets = [try layout.require(.codeFilename), try layout.require(.codeName), try layout.require(.codeLineTable)]
    }

    public var count: Int { entries.count }

    /// The code object at `address`, reading it on first use.
    public func code(at address: UInt64) throws -> CodeObject {
        if let cached = entries[address] { return cached }
        guard let code = try codeIfCode(at: address) else {
            throw ObjectReadError.unexpectedType(expected: "code", found: (try? objects.typeNameOf(address)) ?? "?")
        }
        return code
    }

    /// The code object at `address`, or nil when the object there is not a code object
    /// (checked against the `code` type when known; 3.12+ shim frames hold other objects).
    public func codeIfCode(at address: UInt64) throws -> CodeObject? {
        if let cached = entries[address] { return cached }
        if rejected.contains(address) { return nil }
        guard let code = try read(address) else {
            if rejected.count < CodeObjectCache.maximumEntries { rejected.insert(address) }
            return nil
        }
        if entries.count >= CodeObjectCache.maximumEntries { entries.removeAll(keepingCapacity: true) }
        entries[address] = code
        return code
    }

    private func read(_ address: UInt64) throws -> CodeObject? {
        let head = try objects.memory.readStruct(address, count: headerSize)
        if let codeType, try head.pointer(try layout.require(.objectType)) != codeType { return nil }
        let filenamePointer = try head.pointer(try layout.require(.codeFilename))
        let namePointer = try head.pointer(try layout.require(.codeName))
        let name = try objects.string(namePointer, maximumLength: 1024)
        var qualname = name
        if let offset = layout[.codeQualname] {
            qualname = try objects.string(try head.pointer(offset), maximumLength: 4096)
        }
        let filename = try objects.string(filenamePointer, maximumLength: 4096)
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
        return CodeObject(address: address, name: name, qualname: qualname, filename: filename, firstLine: firstLine,
                          lineTable: LineTable(format: layout.traits.lineTable, bytes: tableBytes, firstLine: firstLine),
                          instructionsStart: instructionsStart, firstTraceable: firstTraceable, instructionBytes: instructionBytes,
                          fingerprint: try fingerprintOffsets.map { try head.pointer($0) })
    }

    /// Drops entries whose fingerprint changed (address reused by another object); one
    /// batched read for all entries. Returns how many were dropped.
    @discardableResult
    public func revalidate() -> Int {
        let addresses = Array(entries.keys)
        guard !addresses.isEmpty, let low = fingerprintOffsets.min(), let high = fingerprintOffsets.max() else { return 0 }
        let results = objects.memory.readMany(addresses.map { ($0 &+ UInt64(low), high - low + 8) })
        var dropped = 0
        for (address, result) in zip(addresses, results) {
            guard let entry = entries[address] else { continue }
            var valid = false
            if case .success(let bytes) = result {
                let copy = RemoteBytes(address: address &+ UInt64(low), bytes: bytes)
                valid = (try? fingerprintOffsets.map { try copy.pointer($0 - low) }) == entry.fingerprint
            }
            if !valid {
                entries[address] = nil
                dropped += 1
            }
        }
        return dropped
    }
}
