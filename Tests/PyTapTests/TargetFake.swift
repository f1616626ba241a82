import PyTap

/// A fake `Target` for `Snapshotter` and `Sampler` tests: the memory of a `FakeInterpreter`,
/// and threads whose run states the test sets (and removes, for a thread that exits).
final class FakeTarget: Target {
    let fake: FakeInterpreter
    var pid: Int32 = 4242
    /// The OS threads and their run state.
    var threads: [Int32: ThreadRunState] = [:]
    var alive = true

    init(_ fake: FakeInterpreter) {
        self.fake = fake
    }

    var memory: RemoteMemory { fake.memory }
    var debugLocator: DebugFileLocator { DebugFileLocator(roots: []) }
    func mappings() throws -> [MemoryMapping] { [] }
    func executablePath() -> String? { "/usr/bin/python-fake" }
    func commandLine() -> [String] { ["python-fake", "app.py"] }
    func name() -> String { "python-fake" }
    func openObject(path: String, mappings: [MemoryMapping]) throws -> ELFFile {
        throw ObjectFileError.cannotOpen(path: path, reason: "fake target")
    }
    func threadIDs() throws -> [Int32] { threads.keys.sorted() }
    /// How many times the sampler asked for a run state (each is a /proc read on a live target).
    var runStateReads = 0
    func runState(tid: Int32) -> ThreadRunState? {
        runStateReads += 1
        return threads[tid]
    }
    func retainThreads(_ tids: Set<Int32>) {}
    var isAlive: Bool { alive }

    /// The Python interpreter of this target, assembled from the fake's parts.
    func python() throws -> PythonTarget {
        PythonTarget(source: self, executable: "/usr/bin/python-fake", library: nil, runtimeObject: nil,
                     version: fake.layout.version, layout: fake.layout, addresses: fake.addresses)
    }
}

extension FakeTarget {
    /// Two threads: tid 11 (running, holds the GIL) in `run` (line 12) called by `main`
    /// (line 4), and tid 12 (idle) in `wait` (line 21). Returns the code objects and thread states.
    static func twoThreads(_ version: String = "3.12.1") throws
        -> (FakeTarget, code: (main: UInt64, run: UInt64, wait: UInt64), first: UInt64, second: UInt64) {
        let fake = try FakeInterpreter(version: version)
        let main = fake.code("main", file: "app.py", firstLine: 1, lines: [2, 3, 4])
        let run = fake.code("run", file: "app.py", firstLine: 10, lines: [11, 12])
        let wait = fake.code("wait", file: "lib.py", firstLine: 20, lines: [21, 22])
        let first = fake.addThread(ident: 0x1000, nativeID: 11)
        fake.setTopFrame(fake.chain([(run, 2), (main, 4)])[0], of: first)
        let second = fake.addThread(ident: 0x2000, nativeID: 12)
        fake.setTopFrame(fake.chain([(wait, 0)])[0], of: second)
        fake.setGILHolder(first)
        let target = FakeTarget(fake)
        target.threads = [11: .running, 12: .idle]
        return (target, (main, run, wait), first, second)
    }
}

extension FakeInterpreter {
    /// Installs `threading._active` = {ident: Thread named name}; returns each name's str
    /// object, so a test can rename a thread by overwriting it.
    @discardableResult
    func nameThreads(_ names: [(ident: UInt64, name: String)]) -> [UInt64] {
        let o = objects
        let attribute = o.traits.strings == .python2 ? "_Thread__name" : "_name"
        var strings = [UInt64]()
        var entries = [(UInt64, UInt64)]()
        for (ident, name) in names {
            let string = o.str(name)
            strings.append(string)
            entries.append((o.int(Int64(ident)), o.instance(className: "Thread", attributes: [(attribute, string)])))
        }
        let module = o.object(type: o.type("module"), size: 64)
        memory.pointer(o.dict([(o.str("_active"), o.dict(entries))]), at: module + o.offset(.moduleDict))
        memory.pointer(o.dict([(o.str("threading"), module)]), at: mainInterpreter + offset(.interpModules))
        return strings
    }
}

extension FakeMemory {
    /// Rewrites every aligned pointer to `old` into `new` (an attribute set to another object).
    func replacePointers(_ old: UInt64, with new: UInt64) {
        for region in regions {
            var offset = 0
            while offset + 8 <= region.bytes.count {
                let value = region.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
                if value == old { pointer(new, at: region.start + UInt64(offset)) }
                offset += 8
            }
        }
    }
}
