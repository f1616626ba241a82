import Testing
import PyTap

/// `PythonReader.locals(ofFrameAt:code:)` on fake frames: names from the code object, cells
/// followed, unbound slots as nil, 3.14+ tag bits masked, garbage counts refused.
@Suite struct FrameLocalsTests {
    static let versions = ["2.7.18", "3.6.15", "3.10.13", "3.11.7", "3.12.1", "3.13.0", "3.14.0"]

    /// A tuple of objects laid out for the version.
    static func tuple(_ items: [UInt64], in objects: FakeObjects) -> UInt64 {
        let tuple = objects.object(type: objects.type("tuple"), size: Int(objects.offset(.tupleItems)) + 8 * max(items.count, 1))
        objects.memory.i64(Int64(items.count), at: tuple + objects.offset(.varObjectSize))
        for (index, item) in items.enumerated() { objects.memory.pointer(item, at: tuple + objects.offset(.tupleItems) + UInt64(8 * index)) }
        return tuple
    }

    static func cell(_ content: UInt64, in objects: FakeObjects) -> UInt64 {
        let cell = objects.object(type: objects.type("cell"), size: 32)
        objects.memory.pointer(content, at: cell + objects.offset(.cellReference))
        return cell
    }

    /// A frame running a function with locals x = 42, y unbound, c a cell holding 'hi' (also
    /// an argument on ≤3.10), f a free variable whose cell is empty; returns (frame, code).
    static func frame(_ objects: FakeObjects, tag: UInt64 = 0) -> (UInt64, UInt64) {
        let memory = objects.memory
        let code = objects.code(name: "f", filename: "f.py", firstLine: 1, lineTable: [])
        let frame = memory.allocate(4096)
        let x = objects.int(42)
        let hi = objects.layout.traits.strings == .python2 ? objects.bytes(Array("hi".utf8)) : objects.str("hi")
        func name(_ text: String) -> UInt64 { objects.layout.traits.strings == .python2 ? objects.bytes(Array(text.utf8)) : objects.str(text) }
        var slots: [UInt64]
        switch objects.layout.traits.frameModel {
        case .frameObjects:
            memory.i32(3, at: code + objects.offset(.codeNLocals))
            memory.pointer(tuple([name("x"), name("y"), name("c")], in: objects), at: code + objects.offset(.codeVarNames))
            memory.pointer(tuple([name("c")], in: objects), at: code + objects.offset(.codeCellVars))
            memory.pointer(tuple([name("f")], in: objects), at: code + objects.offset(.codeFreeVars))
            slots = [x, 0, 0, cell(hi, in: objects), cell(0, in: objects)]
            for (index, slot) in slots.enumerated() { memory.pointer(slot, at: frame + objects.offset(.frameLocalsPlus) + UInt64(8 * index)) }
        case .interpreterFrames:
            let kinds = objects.layout.traits.localKinds
            var names = [name("x"), name("y"), name("c"), name("f")]
            var kindBytes: [UInt8] = [kinds.local, kinds.local, kinds.local | kinds.cell, kinds.free]
            slots = [x | tag, 0, cell(hi, in: objects) | tag, cell(0, in: objects) | tag]
            if kinds.hidden != 0 {
                names.append(name("hidden"))
                kindBytes.append(kinds.local | kinds.hidden)
                slots.append(x)
            }
            memory.pointer(tuple(names, in: objects), at: code + objects.offset(.codeLocalsPlusNames))
            memory.pointer(objects.bytes(kindBytes), at: code + objects.offset(.codeLocalsPlusKinds))
            for (index, slot) in slots.enumerated() { memory.pointer(slot, at: frame + objects.offset(.iframeLocalsPlus) + UInt64(8 * index)) }
        }
        return (frame, code)
    }

    @Test(arguments: versions)
    func namesValuesCellsAndUnbound(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let tag = fake.traits.codeReferenceTagBits
        let (frame, code) = Self.frame(fake.objects, tag: tag)
        let locals = try fake.reader().locals(ofFrameAt: frame, code: code)
        #expect(locals == [LocalVariable(name: "x", repr: "42"), LocalVariable(name: "y", repr: nil),
                           LocalVariable(name: "c", repr: "'hi'"), LocalVariable(name: "f", repr: nil)], "\(version)")
    }

    @Test(arguments: versions)
    func garbageCountsAreRefused(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let (frame, code) = Self.frame(fake.objects)
        let field: LayoutField
        switch fake.traits.frameModel {
        case .frameObjects:
            // co_nlocals disagreeing with co_varnames.
            fake.memory.i32(1 << 30, at: code + fake.offset(.codeNLocals))
            field = .codeVarNames
        case .interpreterFrames:
            // co_localspluskinds shorter than co_localsplusnames.
            let kinds = fake.readPointer(code + fake.offset(.codeLocalsPlusKinds))
            fake.memory.i64(1, at: kinds + fake.offset(.varObjectSize))
            field = .codeLocalsPlusNames
        }
        #expect(throws: ObjectReadError.self) { try fake.reader().locals(ofFrameAt: frame, code: code) }
        // A names tuple of a billion entries.
        let names = fake.readPointer(code + fake.offset(field))
        fake.memory.i64(1 << 30, at: names + fake.offset(.varObjectSize))
        #expect(throws: ObjectReadError.self) { try fake.reader().locals(ofFrameAt: frame, code: code) }
    }
}
