import Testing
import PyTap

/// Code objects whose address is reused, stacks deeper than the walk's cap and names
/// longer than their caps, on fake interpreters of each frame model.
@Suite struct ReaderHardeningTests {
    static let versions = ["2.7.18", "3.8.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0", "3.14.0"]

    /// A str made like the interpreter makes an interned one: with its hash computed.
    private func name(_ fake: FakeInterpreter, _ text: String, hash: Int64) -> UInt64 {
        let object = fake.objects.str(text)
        let hashOffset = fake.layout.traits.strings == .pep393 ? fake.offset(.unicodeLength) + 8 : fake.offset(.varObjectSize) + 8
        fake.memory.i64(hash, at: object + hashOffset)
        return object
    }

    private func code(_ fake: FakeInterpreter, nameObject: UInt64, file: String = "gen.py") -> UInt64 {
        fake.objects.code(name: "", filename: file, firstLine: 1,
                          lineTable: FakeLineTable.encode(fake.traits.lineTable, firstLine: 1, lines: [1, 2, 3]),
                          codeType: fake.codeType, nameObject: nameObject)
    }

    private func codeSize(_ fake: FakeInterpreter) -> Int { Int(fake.layout[.codeCodeAdaptive].map { $0 + 256 } ?? 256) }

    private func names(_ reader: PythonReader) throws -> [String] {
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == nil)
        return try stack.frames.map { try reader.location(of: $0).name }
    }

    @Test(arguments: versions)
    func codeObjectMadeAtAFreedOnesAddressIsReadAgain(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let old = code(fake, nameObject: name(fake, "made_000001", hash: 1111))
        fake.setTopFrame(fake.chain([(old, 4)])[0], of: thread)
        let reader = try fake.reader()
        #expect(try names(reader) == ["made_000001"])
        // Freed, and another code object of the same size made in its place.
        let new = code(fake, nameObject: name(fake, "made_000002", hash: 2222))
        fake.memory.write(fake.memory.peek(new, count: codeSize(fake))!, at: old)
        #expect(try names(reader) == ["made_000002"])
        #expect(reader.codes.takeDropped() == [old])
    }

    @Test(arguments: versions)
    func nameObjectMadeAtAFreedNamesAddressIsReadAgain(version: String) throws {
        // The code object and its name are both freed and remade at the same addresses:
        // every pointer in the code object is the same, only the name's text differs.
        let fake = try FakeInterpreter(version: version)
        try expectNameRemadeInPlaceIsRead(fake) { old in
            // 3.12+: the remade code object took the next co_version, as every new one does.
            if let version = fake.layout[.codeVersion] {
                fake.memory.u32(fake.objects.nextCodeVersion, at: old + UInt64(version))
            }
        }
    }

    /// Makes a code object and samples it, remakes its name in place (and `remakeCode`
    /// the code object), and expects the new name.
    private func expectNameRemadeInPlaceIsRead(_ fake: FakeInterpreter, remakeCode: (UInt64) -> Void) throws {
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let oldName = name(fake, "made_000001", hash: 1111)
        let old = code(fake, nameObject: oldName)
        fake.setTopFrame(fake.chain([(old, 4)])[0], of: thread)
        let reader = try fake.reader()
        #expect(try names(reader) == ["made_000001"])
        let newName = name(fake, "made_000002", hash: 2222)
        let header = fake.traits.strings == .pep393 ? fake.offset(.asciiObjectSize) : fake.offset(.bytesData)
        fake.memory.write(fake.memory.peek(newName, count: Int(header) + 12)!, at: oldName)
        remakeCode(old)
        #expect(try names(reader) == ["made_000002"])
    }

    static let versionedLayouts = ["3.12.1", "3.13.0", "3.14.0"]

    @Test(arguments: versionedLayouts)
    func codeVersionAloneProvesIdentity(version: String) throws {
        // 3.12+: one range per code object (its header, with co_version) in the walk's
        // identity check, not three (header, name's and line table's headers).
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let firstName = name(fake, "first", hash: 1), secondName = name(fake, "second", hash: 2)
        let first = code(fake, nameObject: firstName)
        let second = code(fake, nameObject: secondName)
        fake.setTopFrame(fake.chain([(first, 4), (second, 4)])[0], of: thread)
        let reader = try fake.reader()
        #expect(try names(reader) == ["first", "second"])
        let state = try reader.allThreadStates()[0]
        fake.memory.resetLog()
        #expect(try reader.rawStack(of: state).defect == nil)
        let identityRanges = fake.memory.readLog.filter { $0.address == first || $0.address == second }
        #expect(identityRanges.count == 2)
        let nameHeaders: Set<UInt64> = [firstName + fake.offset(.objectType), secondName + fake.offset(.objectType)]
        #expect(!fake.memory.readLog.contains { nameHeaders.contains($0.address) })
        // The same code object, name and table, but made again: a new co_version.
        fake.memory.u32(fake.objects.nextCodeVersion, at: first + UInt64(fake.layout[.codeVersion]!))
        #expect(try names(reader) == ["first", "second"])
        #expect(reader.codes.takeDropped() == [first])
    }

    @Test(arguments: versionedLayouts)
    func codeObjectsMadeAfterTheVersionCounterRanOutAreCheckedByNameAndTable(version: String) throws {
        // co_version 0: the interpreter's counter ran out, so it proves nothing.
        let fake = try FakeInterpreter(version: version)
        fake.objects.nextCodeVersion = 0
        try expectNameRemadeInPlaceIsRead(fake) { _ in }
    }

    @Test(arguments: versions)
    func unchangedCodeObjectsAreNotReadAgain(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let step = code(fake, nameObject: name(fake, "step", hash: 3333))
        fake.setTopFrame(fake.chain(Array(repeating: (step, 4), count: 5))[0], of: thread)
        let reader = try fake.reader()
        #expect(try names(reader) == Array(repeating: "step", count: 5))
        fake.memory.resetLog()
        #expect(try names(reader) == Array(repeating: "step", count: 5))
        #expect(reader.codes.takeDropped().isEmpty)
        #expect(reader.codes.count == 1)
    }

    @Test(arguments: versions)
    func countOfCutFramesStopsAtItsLimit(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let step = fake.code("step", file: "loop.py", firstLine: 10, lines: [10, 11, 12])
        fake.setTopFrame(fake.chain(Array(repeating: (step, 4), count: 40))[0], of: thread)
        let reader = try fake.reader()
        reader.maximumDepth = 8
        reader.maximumCountedDepth = 20
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == nil)
        #expect(stack.frames.count == 8)
        #expect(stack.cut == CutFrames(count: 12, moreThanCounted: true))
        #expect(stack.cut?.marker.name == "(over 12 outer frames cut)")
    }

    @Test(arguments: versions)
    func longNamesAndFilenamesAreCutWithAnEllipsis(version: String) throws {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let longName = "f" + String(repeating: "n", count: 1999)
        let longFile = "/" + String(repeating: "d", count: 4999)
        let long = fake.code(longName, file: longFile, firstLine: 10, lines: [10, 11, 12])
        fake.setTopFrame(fake.chain([(long, 4)])[0], of: thread)
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        let location = try reader.location(of: stack.frames[0])
        #expect(location.name == String(longName.prefix(1024)) + "…")
        #expect(location.qualname == String(longName.prefix(1024)) + "…")
        #expect(location.filename == String(longFile.prefix(4096)) + "…")
        #expect(location.line == 12)
    }

    @Test func truncatingKeepsShortStringsAndStillRefusesGarbageLengths() throws {
        for version in ["2.7.18", "3.12.1"] {
            let fake = try FakeInterpreter(version: version)
            let reader = ObjectReader(memory: fake.memory, layout: fake.layout)
            #expect(try reader.string(fake.objects.str("short"), maximumLength: 5, truncating: true) == "short")
            #expect(try reader.string(fake.objects.str("longer"), maximumLength: 5, truncating: true) == "longe…")
            if fake.traits.strings == .pep393 {
                #expect(try reader.string(fake.objects.str("é✓ö"), maximumLength: 2, truncating: true) == "é✓…")
            }
            let garbage = fake.objects.str("x")
            let lengthOffset = fake.layout.traits.strings == .pep393 ? fake.offset(.unicodeLength) : fake.offset(.varObjectSize)
            fake.memory.i64(1 << 40, at: garbage + lengthOffset)
            #expect(throws: ObjectReadError.self) { try reader.string(garbage, maximumLength: 5, truncating: true) }
        }
    }

    /// A thread in `step` whose tstate->cframe (3.11/3.12) points nowhere; returns where the
    /// pointer is and the good value it had.
    private func threadWithStaleCFrame(_ version: String) throws -> (FakeInterpreter, UInt64, UInt64) {
        let fake = try FakeInterpreter(version: version)
        let thread = fake.addThread(ident: 0x1000, nativeID: 77)
        let step = fake.code("step", file: "loop.py", firstLine: 10, lines: [10, 11, 12])
        fake.setTopFrame(fake.chain([(step, 4)])[0], of: thread)
        let cframeField = thread + fake.offset(.tstateCFrame)
        let cframe = fake.readPointer(cframeField)
        fake.memory.pointer(FakeInterpreter.unmapped, at: cframeField)
        return (fake, cframeField, cframe)
    }

    @Test(arguments: ["3.11.7", "3.12.1"])
    func staleCFramePointerIsATornStackNotAnError(version: String) throws {
        // 3.11/3.12: tstate->cframe points into the thread's C stack; read a moment too
        // late it can point anywhere. The walk is retried, then counted as torn.
        let (fake, _, _) = try threadWithStaleCFrame(version)
        let reader = try fake.reader()
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == .changedWhileReading)
        #expect(stack.retries == reader.maximumRetries)
        #expect(stack.frames.isEmpty)
    }

    @Test(arguments: ["3.11.7", "3.12.1"])
    func threadThatMovesOnDuringThePauseIsReadWhole(version: String) throws {
        let (fake, cframeField, cframe) = try threadWithStaleCFrame(version)
        let reader = try fake.reader()
        var pauses = 0
        // The first retry comes at once; before the second the thread gets to run.
        reader.pauseBeforeRetry = { _ in
            pauses += 1
            fake.memory.pointer(cframe, at: cframeField)
        }
        let stack = try reader.rawStack(of: try reader.allThreadStates()[0])
        #expect(stack.defect == nil)
        #expect(stack.retries == 2)
        #expect(pauses == 1)
        #expect(try reader.expectedFrames(stack) == [ExpectedFrame("step", file: "loop.py", line: 12)])
    }
}
