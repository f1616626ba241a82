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

/// A CPython interpreter found in a process: which file holds its runtime, its exact
/// version, its layout and the addresses every walk starts from.
public final class PythonTarget {
    public let process: LinuxProcess
    public let executable: String
    /// The libpython the runtime lives in, nil for a static build.
    public let library: String?
    /// The object file that holds `_PyRuntime` / `interp_head`.
    public let runtimeObject: LoadedObject
    public let version: PythonVersion
    public let layout: PythonLayout
    /// `_PyRuntime` (3.7+).
    public let runtimeAddress: UInt64?
    /// The variable `interp_head` (2.7, 3.6), when its symbol is known.
    public let interpHeadAddress: UInt64?
    /// The variable `_PyThreadState_Current` (2.7, 3.6).
    public let currentThreadStateAddress: UInt64?
    /// The `code` type object, to check code pointers.
    public let codeTypeAddress: UInt64?

    public var pid: Int32 { process.pid }

    /// The addresses a reader starts from.
    public var addresses: RuntimeAddresses {
        var frameType: UInt64?
        if case .frameObjects = layout.traits.frameModel { frameType = runtimeObject.address(ofSymbol: "PyFrame_Type") }
        return RuntimeAddresses(runtime: runtimeAddress, interpHead: interpHeadAddress,
                                currentThreadState: currentThreadStateAddress, codeType: codeTypeAddress, frameType: frameType)
    }
    public var memory: ProcessMemory { process.memory }

    /// Finds the interpreter in process `pid`. Throws `ProcessError` for a missing or
    /// forbidden process and `AttachError` for one that is not a usable Python.
    public init(pid: Int32) throws {
        let process = try LinuxProcess(pid: pid)
        self.process = process
        let mappings = try process.mappings()
        let executable = (try? process.executablePath()) ?? ""
        self.executable = executable
        let locator = DebugFileLocator(roots: ["/proc/\(pid)/root", ""])

        // Candidates: the executable, then any libpython, by the order they are mapped.
        var candidates = [String]()
        if !executable.isEmpty { candidates.append(executable) }
        for mapping in mappings {
            guard let path = mapping.path, mapping.isFile, !candidates.contains(path) else { continue }
            if PythonTarget.isLibPython(path) { candidates.append(path) }
        }
        var found: LoadedObject?
        var unreadable = [String]()
        for path in candidates {
            let objectMappings = mappings.filter { $0.path == path }
            guard !objectMappings.isEmpty else { continue }
            let object: LoadedObject
            do {
                let elf = try PythonTarget.openMapped(process: process, path: path, mappings: objectMappings)
                object = try LoadedObject(path: path, elf: elf, mappings: objectMappings, debugLocator: locator)
            } catch {
                unreadable.append("\(path) (\(error))")
                continue
            }
            let markers = ["_PyRuntime", "Py_Version", "interp_head", "_PyThreadState_Current", "PyEval_EvalFrameEx", "_PyEval_EvalFrameDefault"]
            if markers.contains(where: { object.elf.symbol(named: $0) != nil }) {
                found = object
                break
            }
        }
        guard let runtimeObject = found else {
            throw AttachError.notPython(pid: pid, name: (try? process.name()) ?? "?", unreadable: unreadable)
        }
        self.runtimeObject = runtimeObject
        self.library = runtimeObject.path == executable ? nil : runtimeObject.path

        let runtimeAddress = runtimeObject.address(ofSymbol: "_PyRuntime")
        self.runtimeAddress = runtimeAddress
        var version = PythonTarget.detectVersion(object: runtimeObject, executable: executable)
        // 3.13+: the runtime describes itself; its version is exact.
        var debugOffsets: DebugOffsets?
        if let runtimeAddress, let head = try? process.memory.readBytes(runtimeAddress, count: 16),
           let selfVersion = DebugOffsets.version(in: head) {
            version = selfVersion
            if let count = DebugOffsets.byteCount(for: selfVersion.minorVersion),
               let bytes = try? process.memory.readBytes(runtimeAddress, count: count) {
                debugOffsets = try DebugOffsets(bytes: bytes)
            }
        }
        guard let version else { throw AttachError.unknownVersion(pid: pid, path: runtimeObject.path) }
        self.version = version
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
        self.layout = layout
        // Only 2.7 and 3.6 keep these; looking them up elsewhere would search debug files for nothing.
        let usesInterpHead = layout.traits.interpreterRoot == .interpHeadSymbol
        let usesCurrentThread = usesInterpHead || layout.traits.gil == .currentThreadSymbol
        self.interpHeadAddress = usesInterpHead ? runtimeObject.address(ofSymbol: "interp_head") : nil
        self.currentThreadStateAddress = usesCurrentThread ? runtimeObject.address(ofSymbol: "_PyThreadState_Current") : nil
        self.codeTypeAddress = runtimeObject.address(ofSymbol: "PyCode_Type")
        switch layout.traits.interpreterRoot {
        case .runtime where runtimeAddress == nil:
            throw AttachError.missingSymbols(pid: pid, path: runtimeObject.path, symbols: ["_PyRuntime"])
        case .interpHeadSymbol where interpHeadAddress == nil && currentThreadStateAddress == nil:
            throw AttachError.missingSymbols(pid: pid, path: runtimeObject.path, symbols: ["interp_head", "_PyThreadState_Current"])
        default:
            break
        }
    }

    /// Whether a path names a libpython (libpython3.12.so.1.0, libpython2.7.so, libpython3.6m.so).
    static func isLibPython(_ path: String) -> Bool {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return name.hasPrefix("libpython") && name.contains(".so")
    }

    /// Opens an object file the way the target sees it: through /proc/PID/root, or through
    /// /proc/PID/map_files when it was deleted or replaced.
    /// Throws the last failure when no way works.
    static func openMapped(process: LinuxProcess, path: String, mappings: [MemoryMapping]) throws -> ELFFile {
        var failure: Error = ObjectFileError.cannotOpen(path: path, reason: "no mapping of its start")
        if let first = mappings.first, !first.deleted {
            do { return try ELFFile(path: process.hostPath(forTargetPath: path)) } catch { failure = error }
        }
        for mapping in mappings where mapping.fileOffset == 0 {
            do { return try ELFFile(path: process.mapFilesPath(for: mapping)) } catch { failure = error }
        }
        throw failure
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
