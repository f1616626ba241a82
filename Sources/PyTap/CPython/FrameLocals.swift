/// One argument or local variable of a frame, as `dump --locals` shows it.
public struct LocalVariable: Sendable, Equatable {
    public var name: String
    /// A short repr of the value (see `ObjectReader.shortRepr`); nil when the variable is
    /// unbound (not assigned yet, or deleted).
    public var repr: String?

    public init(name: String, repr: String?) {
        self.name = name
        self.repr = repr
    }
}

extension PythonReader {
    /// Most local variables read from one frame.
    public static let maximumLocals = 4096

    /// The arguments and local variables of the frame at `frame` running `code`, cells and
    /// free variables included, in the code object's order (co_varnames, then co_cellvars,
    /// then co_freevars; a name in two of them is shown once, at its first place).
    public func locals(ofFrameAt frame: UInt64, code: UInt64) throws -> [LocalVariable] {
        let slots: [(name: String, slot: Int, isCell: Bool)]
        let localsOffset: Int
        switch layout.traits.frameModel {
        case .frameObjects:
            slots = try frameObjectSlots(code: code)
            localsOffset = try layout.require(.frameLocalsPlus)
        case .interpreterFrames:
            slots = try interpreterFrameSlots(code: code)
            localsOffset = try layout.require(.iframeLocalsPlus)
        }
        let slotCount = (slots.map(\.slot).max() ?? -1) + 1
        if slotCount == 0 { return [] }
        let values = try reading("frame's local variables", at: frame) {
            try memory.readStruct(frame &+ UInt64(localsOffset), count: slotCount * 8)
        }
        let tagMask = ~layout.traits.codeReferenceTagBits
        let cellReference = try layout.require(.cellReference)
        return try slots.map { entry in
            var value = try values.pointer(entry.slot * 8) & tagMask
            // A cell or free variable's slot holds its cell (once the frame made it).
            if entry.isCell, value != 0, (try? objects.typeNameOf(value)) == "cell" {
                value = try memory.readPointer(value &+ UInt64(cellReference))
            }
            return LocalVariable(name: entry.name, repr: value == 0 ? nil : objects.shortRepr(value))
        }
    }

    /// ≤3.10: `f_localsplus` holds co_nlocals locals (named by co_varnames), then a cell per
    /// co_cellvars and per co_freevars. An argument that is also a cell lives in its cell.
    private func frameObjectSlots(code: UInt64) throws -> [(name: String, slot: Int, isCell: Bool)] {
        let localCount = try memory.readInteger(code &+ UInt64(try layout.require(.codeNLocals)), as: Int32.self)
        let varNames = try nameTuple(code, .codeVarNames)
        let cellNames = try nameTuple(code, .codeCellVars)
        let freeNames = try nameTuple(code, .codeFreeVars)
        guard Int(localCount) == varNames.count else {
            throw ObjectReadError.implausible(what: "co_nlocals", value: Int64(localCount))
        }
        var slots = [(name: String, slot: Int, isCell: Bool)]()
        var placed = [String: Int]()
        let cells = cellNames.enumerated().map { (name: $0.element, slot: varNames.count + $0.offset, isCell: true) }
        let frees = freeNames.enumerated().map { (name: $0.element, slot: varNames.count + cellNames.count + $0.offset, isCell: true) }
        for (index, name) in varNames.enumerated() {
            placed[name] = slots.count
            slots.append((name, index, false))
        }
        for entry in cells + frees {
            if let index = placed[entry.name] { slots[index] = entry } else {
                placed[entry.name] = slots.count
                slots.append(entry)
            }
        }
        return slots
    }

    /// 3.11+: `localsplus` has one slot per co_localsplusnames entry; co_localspluskinds says
    /// which are cells or free variables, and which are hidden (inlined comprehensions).
    private func interpreterFrameSlots(code: UInt64) throws -> [(name: String, slot: Int, isCell: Bool)] {
        let names = try nameTuple(code, .codeLocalsPlusNames)
        let kindsObject = try memory.readPointer(code &+ UInt64(try layout.require(.codeLocalsPlusKinds)))
        let kinds = try objects.bytes(kindsObject, maximumLength: PythonReader.maximumLocals)
        guard kinds.count == names.count else { throw ObjectReadError.implausible(what: "co_localspluskinds length", value: Int64(kinds.count)) }
        let bits = layout.traits.localKinds
        var slots = [(name: String, slot: Int, isCell: Bool)]()
        for (index, name) in names.enumerated() where kinds[index] & bits.hidden == 0 {
            slots.append((name, index, kinds[index] & (bits.cell | bits.free) != 0))
        }
        return slots
    }

    /// The strings of a tuple of names held by a code object's `field`.
    private func nameTuple(_ code: UInt64, _ field: LayoutField) throws -> [String] {
        let tuple = try memory.readPointer(code &+ UInt64(try layout.require(field)))
        if tuple == 0 { return [] }
        let count = try memory.readInteger(tuple &+ UInt64(try layout.require(.varObjectSize)), as: Int64.self)
        guard count >= 0, count <= Int64(PythonReader.maximumLocals) else {
            throw ObjectReadError.implausible(what: "\(field.rawValue) length", value: count)
        }
        if count == 0 { return [] }
        let items = try memory.readStruct(tuple &+ UInt64(try layout.require(.tupleItems)), count: Int(count) * 8)
        return try (0..<Int(count)).map { try objects.string(try items.pointer($0 * 8), maximumLength: 1024) }
    }
}
