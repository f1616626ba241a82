/// Names the type of the Python object an allocator block holds, where that is cheap to
/// tell: a block from the object allocator is an object (after its pre-headers: GC header,
/// 3.11+ managed dict/weakref words) or a raw buffer (a list's items, a bytearray's bytes).
/// A candidate object is believed only when its `ob_type` points to a type object whose
/// own type is `type` (or a metaclass of it), whose `tp_name` is a short printable string,
/// whose flags ask for exactly the pre-headers in front of the candidate, and whose
/// `tp_basicsize` fits in the block. Anything else is nil: remote memory is untrusted and
/// a buffer can hold any bytes.
public final class BlockTypeReader {
    public let memory: RemoteMemory
    private let objectTypeOffset: Int
    private let typeNameOffset: Int
    private let basicSizeOffset: Int
    private let flagsOffset: Int
    private let preHeaders: VersionTraits.ObjectPreHeaders
    /// `PyType_Type`'s address in the target.
    private let typeType: UInt64
    private struct TypeFacts { var name: String; var flags: UInt64; var basicSize: Int }
    /// By type address; nil for an address that is not a type object.
    private var types: [UInt64: TypeFacts?] = [:]
    private var metatypes: [UInt64: Bool] = [:]

    /// Most type addresses remembered (a few thousand classes in a big program).
    static let maximumCachedTypes = 1 << 16
    /// Longest `tp_name` believed.
    static let maximumNameLength = 128

    /// Nil when the layout lacks a field the check needs.
    public init?(memory: RemoteMemory, layout: PythonLayout, typeType: UInt64) {
        guard let objectType = layout[.objectType], let name = layout[.typeName],
              let basicSize = layout[.typeBasicSize], let flags = layout[.typeFlags] else { return nil }
        self.memory = memory
        objectTypeOffset = objectType
        typeNameOffset = name
        basicSizeOffset = basicSize
        flagsOffset = flags
        preHeaders = layout.traits.objectPreHeaders
        self.typeType = typeType
    }

    /// Where an object whose type has `flags` starts in its block.
    func objectOffset(flags: UInt64) -> Int {
        (flags & preHeaders.hasGCFlag != 0 ? preHeaders.gcHeadSize : 0)
            + (flags & preHeaders.preHeaderFlags != 0 ? preHeaders.preHeaderSize : 0)
    }

    /// Offsets in a block where an object may start, nearest first.
    var candidateOffsets: [Int] {
        var offsets = Set([0, preHeaders.gcHeadSize])
        if preHeaders.preHeaderSize > 0 {
            offsets.insert(preHeaders.preHeaderSize)
            offsets.insert(preHeaders.gcHeadSize + preHeaders.preHeaderSize)
        }
        return offsets.sorted()
    }

    /// The type name of each block (address, size), nil where it is not a recognisable
    /// object. Blocks are read in batches (one system call each on a live process).
    public func typeNames(of blocks: [(address: UInt64, size: UInt64)]) -> [String?] {
        let offsets = candidateOffsets
        let headBytes = (offsets.last ?? 0) + objectTypeOffset + 8
        var names = [String?]()
        names.reserveCapacity(blocks.count)
        var start = 0
        while start < blocks.count {
            let batch = blocks[start..<min(start + 512, blocks.count)]
            let heads = memory.readMany(batch.map { (address: $0.address, count: Int(min($0.size, UInt64(headBytes)))) })
            for (block, head) in zip(batch, heads) {
                guard case .success(let bytes) = head else { names.append(nil); continue }
                names.append(typeName(head: bytes, size: block.size, offsets: offsets))
            }
            start += batch.count
        }
        return names
    }

    private func typeName(head: [UInt8], size: UInt64, offsets: [Int]) -> String? {
        for offset in offsets {
            let field = offset + objectTypeOffset
            guard field + 8 <= head.count else { break }
            let type = head[field..<field + 8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            guard type != 0, type & 7 == 0, let facts = self.facts(ofType: type) else { continue }
            if objectOffset(flags: facts.flags) == offset && UInt64(offset + facts.basicSize) <= size { return facts.name }
        }
        return nil
    }

    private func facts(ofType type: UInt64) -> TypeFacts? {
        if let known = types[type] { return known }
        let facts = readFacts(ofType: type)
        if types.count < BlockTypeReader.maximumCachedTypes { types[type] = facts }
        return facts
    }

    private func readFacts(ofType type: UInt64) -> TypeFacts? {
        guard let head = try? memory.readStruct(type, count: flagsOffset + 8),
              let metatype = try? head.pointer(objectTypeOffset), isMetatype(metatype),
              let namePointer = try? head.pointer(typeNameOffset), namePointer != 0,
              let basicSize = try? head.i64(basicSizeOffset), basicSize >= 8, basicSize <= 1 << 20,
              let flags = try? head.u64(flagsOffset),
              let name = readName(namePointer) else { return nil }
        return TypeFacts(name: name, flags: flags, basicSize: Int(basicSize))
    }

    /// `type` itself, or a class whose type is `type` (a metaclass such as ABCMeta).
    private func isMetatype(_ candidate: UInt64) -> Bool {
        if candidate == typeType { return true }
        guard candidate != 0, candidate & 7 == 0 else { return false }
        if let known = metatypes[candidate] { return known }
        let answer = (try? memory.readPointer(candidate &+ UInt64(objectTypeOffset))) == typeType
        if metatypes.count < BlockTypeReader.maximumCachedTypes { metatypes[candidate] = answer }
        return answer
    }

    /// A NUL-terminated printable ASCII name of at most `maximumNameLength` bytes.
    private func readName(_ address: UInt64) -> String? {
        var bytes = [UInt8]()
        var position = address
        while bytes.count <= BlockTypeReader.maximumNameLength {
            // Never across a page: the name may end just before an unmapped one.
            let step = min(32, Int(4096 - (position & 4095)))
            guard let chunk = try? memory.readBytes(position, count: step) else { return nil }
            if let end = chunk.firstIndex(of: 0) {
                bytes += chunk[..<end]
                guard !bytes.isEmpty, bytes.count <= BlockTypeReader.maximumNameLength,
                      bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes += chunk
            position &+= UInt64(step)
        }
        return nil
    }
}
