/// Why pytap could not attach to a process as a Python interpreter.
public enum AttachError: Error, Equatable, Sendable {
    /// Neither the executable nor a mapped library carries a CPython runtime; `unreadable`
    /// names each candidate that could not be opened or parsed, and why.
    case notPython(pid: Int32, name: String, unreadable: [String])
    /// A CPython binary is mapped but its runtime has no interpreter yet (starting or exiting).
    case notInitialized(pid: Int32)
    /// The interpreter's version has no layout pytap knows.
    case unsupportedVersion(pid: Int32, version: String)
    /// The version could not be determined.
    case unknownVersion(pid: Int32, path: String)
    /// The binary lacks the symbols pytap needs to find the interpreter (stripped, no debug file).
    case missingSymbols(pid: Int32, path: String, symbols: [String])
    case freeThreaded(pid: Int32, version: String)

    /// Whether waiting cannot change the answer: a starting process may not have mapped
    /// libpython yet (`notPython`) or set up its runtime, but its version stays what it is.
    public var isFinal: Bool {
        switch self {
        case .notPython, .notInitialized, .missingSymbols: return false
        case .unsupportedVersion, .unknownVersion, .freeThreaded: return true
        }
    }
}

/// A CPython interpreter found in a target (a live process or a core file): which file
/// holds its runtime, its exact version, its layout and the addresses every walk starts from.
/// Built in steps, each its own function: find the runtime's object file, tell the version,
/// load the layout, find the runtime addresses.
public final class PythonTarget {
    /// What the interpreter is read through.
    public let source: Target
    public let executable: String
    /// The libpython the runtime lives in, nil for a static build.
    public let library: String?
    /// The object file that holds `_PyRuntime` / `interp_head`; nil when the target was
    /// assembled from parts (tests).
    public let runtimeObject: LoadedObject?
    public let version: PythonVersion
    public let layout: PythonLayout
    /// The addresses a reader starts from.
    public let addresses: RuntimeAddresses

    public var pid: Int32 { source.pid }
    /// The live process, nil for a core file or a fake (exec detection needs /proc).
    public var process: LinuxProcess? { (source as? LiveProcessTarget)?.process }
    public var memory: RemoteMemory { source.memory }

    /// A target from parts already known (tests build one on a fake target this way).
    public init(source: Target, executable: String, library: String?, runtimeObject: LoadedObject?,
                version: PythonVersion, layout: PythonLayout, addresses: RuntimeAddresses) {
        self.source = source
        self.executable = executable
        self.library = library
        self.runtimeObject = runtimeObject
        self.version = version
        self.layout = layout
        self.addresses = addresses
    }

    /// Finds the interpreter in process `pid`. Throws `ProcessError` for a missing or
    /// forbidden process and `AttachError` for one that is not a usable Python.
    public convenience init(pid: Int32) throws {
        try self.init(source: try LiveProcessTarget(pid: pid))
    }

    /// The interpreter of process `pid` once it runs Python: attached, with at least one
    /// thread state. What launch mode and `--subprocesses` wait for; throws why not (yet).
    public static func attachRunning(pid: Int32) throws -> PythonTarget {
        let target = try PythonTarget(pid: pid)
        guard try !PythonReader(target: target).allThreadStates().isEmpty else { throw AttachError.notInitialized(pid: pid) }
        return target
    }

    /// Finds the interpreter in a target. Throws `AttachError` for one that is not a usable Python.
    public convenience init(source: Target) throws {
        let executable = source.executablePath() ?? ""
        let object = try PythonTarget.findRuntimeObject(in: source, executable: executable)
        let runtime = object.address(ofSymbol: "_PyRuntime")
        let (version, debugOffsets) = try PythonTarget.detectVersion(of: source, object: object, runtime: runtime,
                                                                       executable: executable)
        let layout = try PythonTarget.loadLayout(version: version, debugOffsets: debugOffsets, pid: source.pid)
        let addresses = try PythonTarget.runtimeAddresses(object: object, runtime: runtime, layout: layout, pid: source.pid)
        self.init(source: source, executable: executable, library: object.path == executable ? nil : object.path,
                  runtimeObject: object, version: version, layout: layout, addresses: addresses)
    }

    /// The object file holding CPython's runtime: the executable, else a libpython, by the
    /// order they are mapped.
    static func findRuntimeObject(in source: Target, executable: String) throws -> LoadedObject {
        let mappings = try source.mappings()
        var candidates = [String]()
        if !executable.isEmpty { candidates.append(executable) }
        for mapping in mappings {
            guard let path = mapping.path, mapping.isFile, !candidates.contains(path) else { continue }
            if PythonTarget.isLibPython(path) { candidates.append(path) }
        }
        let markers = ["_PyRuntime", "Py_Version", "interp_head", "_PyThreadState_Current", "PyEval_EvalFrameEx", "_PyEval_EvalFrameDefault"]
        var unreadable = [String]()
        for path in candidates {
            let objectMappings = mappings.filter { $0.path == path }
            guard !objectMappings.isEmpty else { continue }
            let object: LoadedObject
            do {
                let elf = try source.openObject(path: path, mappings: objectMappings)
                object = try LoadedObject(path: path, elf: elf, mappings: objectMappings, debugLocator: source.debugLocator)
            } catch let error as CoreFileError {
                throw error  // a core's file that changed on disk: say so, do not look further
            } catch {
                unreadable.append("\(path) (\(error))")
                continue
            }
            if markers.contains(where: { object.elf.symbol(named: $0) != nil }) { return object }
        }
        // A process that exits while it is looked at loses its mappings before it is a
        // zombie: that is an exit, not a process that never was Python. Between the two its
        // state still reads as running, so a process left with no mappings at all (which no
        // user process has; kernel threads stay alive) is watched for up to 200 ms.
        if let live = (source as? LiveProcessTarget)?.process {
            if !live.isAlive { throw ProcessError.exited(pid: source.pid) }
            if mappings.isEmpty || (try? source.mappings().isEmpty) == true {
                let deadline = MonotonicClock.now() + 200_000_000
                while MonotonicClock.now() < deadline {
                    _ = MonotonicClock.sleep(until: MonotonicClock.now() + 5_000_000)
                    if !live.isAlive { throw ProcessError.exited(pid: source.pid) }
                }
            }
        }
        throw AttachError.notPython(pid: source.pid, name: source.name(), unreadable: unreadable)
    }

    /// The exact version, and on 3.13+ the runtime's own `_Py_DebugOffsets`.
    static func detectVersion(of source: Target, object: LoadedObject, runtime: UInt64?,
                              executable: String) throws -> (PythonVersion, DebugOffsets?) {
        var version = PythonTarget.detectVersion(object: object, executable: executable)
        // 3.13+: the runtime describes itself; its version is exact.
        var debugOffsets: DebugOffsets?
        if let runtime, let head = try? source.memory.readBytes(runtime, count: 16),
           let selfVersion = DebugOffsets.version(in: head) {
            version = selfVersion
            if let count = DebugOffsets.byteCount(for: selfVersion.minorVersion),
               let bytes = try? source.memory.readBytes(runtime, count: count) {
                debugOffsets = try DebugOffsets(bytes: bytes)
            }
        }
        guard let version else { throw AttachError.unknownVersion(pid: source.pid, path: object.path) }
        return (version, debugOffsets)
    }

    /// The built-in layout of the version, overridden by the target's own `_Py_DebugOffsets`.
    static func loadLayout(version: PythonVersion, debugOffsets: DebugOffsets?, pid: Int32) throws -> PythonLayout {
        var layout: PythonLayout
        do {
            layout = try PythonLayout(version: version)
        } catch {
            throw AttachError.unsupportedVersion(pid: pid, version: version.description)
        }
        if let debugOffsets {
            if debugOffsets.freeThreaded { throw AttachError.freeThreaded(pid: pid, version: version.description) }
            layout.apply(targetValues: debugOffsets.layoutValues)
        }
        return layout
    }

    /// The symbols a walk starts from; throws when the ones this version needs are missing.
    static func runtimeAddresses(object: LoadedObject, runtime: UInt64?, layout: PythonLayout, pid: Int32) throws -> RuntimeAddresses {
        // Only 2.7 and 3.6 keep these; looking them up elsewhere would search debug files for nothing.
        let usesInterpHead = layout.traits.interpreterRoot == .interpHeadSymbol
        let usesCurrentThread = usesInterpHead || layout.traits.gil == .currentThreadSymbol
        var addresses = RuntimeAddresses(runtime: runtime)
        addresses.interpHead = usesInterpHead ? object.address(ofSymbol: "interp_head") : nil
        addresses.currentThreadState = usesCurrentThread ? object.address(ofSymbol: "_PyThreadState_Current") : nil
        addresses.codeType = object.address(ofSymbol: "PyCode_Type")
        if case .frameObjects = layout.traits.frameModel { addresses.frameType = object.address(ofSymbol: "PyFrame_Type") }
        addresses.noneObject = object.address(ofSymbol: "_Py_NoneStruct")
        if layout.traits.gcState == .collectingSymbol { addresses.gcCollecting = gcCollectingAddress(in: object) }
        switch layout.traits.interpreterRoot {
        case .runtime where runtime == nil:
            throw AttachError.missingSymbols(pid: pid, path: object.path, symbols: ["_PyRuntime"])
        case .interpHeadSymbol where addresses.interpHead == nil && addresses.currentThreadState == nil:
            throw AttachError.missingSymbols(pid: pid, path: object.path, symbols: ["interp_head", "_PyThreadState_Current"])
        default:
            return addresses
        }
    }

    /// gcmodule.c's `static int collecting` (2.7, 3.6): a local data symbol of .symtab or
    /// the debug file, nil in a stripped binary.
    static func gcCollectingAddress(in object: LoadedObject) -> UInt64? {
        guard let symbol = object.symbol(named: "collecting"), symbol.type == 1, symbol.size == 4 else { return nil }
        return object.address(ofSymbol: "collecting")
    }

    /// Whether a path names a libpython (libpython3.12.so.1.0, libpython2.7.so, libpython3.6m.so).
    static func isLibPython(_ path: String) -> Bool {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return name.hasPrefix("libpython") && name.contains(".so")
    }

    /// Version from `Py_Version` (3.11+), else the version string in .rodata, else the
    /// file names (libpython3.X / python3.X).
    static func detectVersion(object: LoadedObject, executable: String) -> PythonVersion? {
        if let symbol = object.symbol(named: "Py_Version"),
           let bytes = object.elf.bytes(atVirtualAddress: symbol.value, count: 4) {
            let hex = UInt64(bytes[0]) | UInt64(bytes[1]) << 8 | UInt64(bytes[2]) << 16 | UInt64(bytes[3]) << 24
            if let version = PythonVersion(hex: hex) { return version }
        }
        let fromName = versionFromName(object.path) ?? versionFromName(executable)
        if let scanned = scanVersionString(object.elf, expected: fromName?.minorVersion) { return scanned }
        return fromName
    }

    static func versionFromName(_ path: String) -> PythonVersion? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        for prefix in ["libpython", "python"] where name.hasPrefix(prefix) {
            if let version = PythonVersion(string: String(name.dropFirst(prefix.count))) {
                return PythonVersion(major: version.major, minor: version.minor, micro: nil)
            }
        }
        return nil
    }

    /// Finds PY_VERSION ("3.9.18", "2.7.18+") in .rodata: a NUL-terminated string, or the tail
    /// of one after a '/', '-' or space (linkers merge "2.7.18" into ".../versions/2.7.18").
    static func scanVersionString(_ elf: ELFFile, expected: PythonMinorVersion?) -> PythonVersion? {
        guard let section = elf.section(named: ".rodata"), let bytes = try? elf.rawBytes(of: section) else { return nil }
        var index = 1
        let count = bytes.count
        while index + 5 < count {
            let c = bytes[index]
            let before = bytes[index - 1]
            if (c == 0x32 || c == 0x33), before == 0 || before == 0x2f || before == 0x2d || before == 0x20, bytes[index + 1] == 0x2e {
                var end = index
                while end < count, end - index < 16, bytes[end] != 0 { end += 1 }
                if end < count, bytes[end] == 0 {
                    let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[index..<end]), as: UTF8.self)
                    if text.allSatisfy({ $0.isNumber || $0 == "." || $0 == "a" || $0 == "b" || $0 == "r" || $0 == "c" || $0 == "+" }),
                       text.filter({ $0 == "." }).count == 2,
                       let version = PythonVersion(string: text), version.micro != nil,
                       expected == nil || expected == version.minorVersion {
                        return version
                    }
                }
                index = end
            }
            index += 1
        }
        return nil
    }
}
