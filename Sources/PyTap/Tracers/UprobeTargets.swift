import Glibc

/// A function of an object file mapped into a target, where a uprobe can be placed: its
/// name, link-time address and file offset (what the kernel places a uprobe by).
public struct UprobeFunction: Sendable, Equatable {
    public var name: String
    public var address: UInt64
    public var fileOffset: UInt64
}

/// The functions of one object file of a target that uprobes may be placed on, and the
/// file's path as pytap opens it (under /proc/PID/root: the kernel resolves it to the same
/// inode the target maps). Shared by the tracers that probe C functions.
public struct UprobeTargets {
    /// Path as the target sees it.
    public let path: String
    /// Path as pytap opens it (for the uprobe attach).
    public let hostPath: String
    /// Sorted by address, one per address.
    public let functions: [UprobeFunction]
    /// How many function symbols were left out as unsafe to probe (unsized, ifuncs,
    /// cold parts, functions that do not return to their caller).
    public let skipped: Int

    /// Functions a uretprobe must never be placed on: they return twice, on another stack or
    /// thread (a thread made by `clone` would return to the kernel's trampoline with no
    /// return recorded for it, and die), or never return to a caller at all.
    static let unsafeNames: Set<String> = [
        "_start", "_init", "_fini", "__restore_rt", "__libc_start_main", "__libc_start_call_main",
        "clone", "__clone", "clone3", "__clone3", "__clone_internal", "__clone_internal_fallback",
        "vfork", "__vfork", "fork", "_Fork", "__libc_fork", "start_thread",
        "setjmp", "_setjmp", "__sigsetjmp", "__sigjmp_save", "longjmp", "_longjmp", "siglongjmp", "__longjmp",
        "__longjmp_chk", "____longjmp_chk", "__libc_longjmp", "__libc_siglongjmp",
        "getcontext", "setcontext", "swapcontext", "makecontext", "__start_context", "__push___start_context",
    ]

    /// The probe-able functions of `object` (its symbols and its debug file's), whose name
    /// matches `glob` (fnmatch; nil: all).
    public init(object: LoadedObject, hostPath: String, glob: String? = nil) {
        path = object.path
        self.hostPath = hostPath
        var symbols = object.elf.allSymbols()
        if let debugFile = object.debugFile { symbols += debugFile.allSymbols() }
        let executable = object.elf.loadSegments.filter { $0.flags & 1 != 0 }  // PF_X
        var kept = [ELFSymbol]()
        var skippedAddresses = Set<UInt64>()
        for symbol in symbols where symbol.type == ELFSymbol.typeFunction || symbol.type == ELFSymbol.typeIndirectFunction {
            guard symbol.isDefined, symbol.sectionIndex < 0xff00, symbol.value != 0, !symbol.name.isEmpty else { continue }
            let inCode = executable.contains { symbol.value >= $0.virtualAddress && symbol.value - $0.virtualAddress < $0.fileSize }
            if symbol.type == ELFSymbol.typeIndirectFunction || symbol.size == 0 || !inCode
                || symbol.name.contains(".cold") || UprobeTargets.unsafeNames.contains(symbol.name) {
                skippedAddresses.insert(symbol.value)
                continue
            }
            kept.append(symbol)
        }
        // One entry per address, named as the symbolizer names it (aliases resolved); an
        // address any of whose names is unsafe stays out.
        let index = SymbolIndex(symbols: kept.filter { !skippedAddresses.contains($0.value) })
        var functions = [UprobeFunction]()
        for function in index.functions {
            if let glob, fnmatch(glob, function.name, 0) != 0 { continue }
            guard let offset = object.elf.fileOffset(ofVirtualAddress: function.address) else { continue }
            functions.append(UprobeFunction(name: function.name, address: function.address, fileOffset: offset))
        }
        self.functions = functions
        skipped = skippedAddresses.count
    }

    /// The object file of a live target to probe: the one whose path is `module` or whose
    /// file name contains it.
    public static func object(named module: String, in target: LiveProcessTarget) throws -> LoadedObject {
        let mappings = try target.mappings().filter { $0.isFile && ($0.path?.hasPrefix("/") ?? false) }
        let paths = mappings.compactMap(\.path)
        let fileName = { (path: String) in path.split(separator: "/").last.map(String.init) ?? path }
        guard let path = paths.first(where: { $0 == module }) ?? paths.first(where: { fileName($0).contains(module) }) else {
            throw UprobeTargetError.noSuchModule(module, pid: target.pid)
        }
        let own = mappings.filter { $0.path == path }
        return try LoadedObject(path: path, elf: target.openObject(path: path, mappings: own), mappings: own,
                                debugLocator: target.debugLocator)
    }

    /// The function named `name`; a compiler-made clone (`name.lto_priv.0`,
    /// `name.constprop.0`) when no function has exactly that name.
    public func function(named name: String) -> (index: Int, function: UprobeFunction)? {
        if let index = functions.firstIndex(where: { $0.name == name }) { return (index, functions[index]) }
        if let index = functions.firstIndex(where: { $0.name.hasPrefix(name + ".") }) { return (index, functions[index]) }
        return nil
    }
}

/// Why functions could not be found to probe.
public enum UprobeTargetError: Error, Equatable, CustomStringConvertible {
    case noSuchModule(String, pid: Int32)
    case noSuchFunction(String, path: String)
    case noFunctions(path: String, glob: String?)

    public var description: String {
        switch self {
        case .noSuchModule(let module, let pid):
            return "process \(pid) maps no object file named \(module)"
        case .noSuchFunction(let name, let path):
            return "no function \(name) that can be probed in \(path) (a static function inlined everywhere has no symbol)"
        case .noFunctions(let path, let glob):
            return "no function of \(path) can be probed" + (glob.map { " that matches \($0)" } ?? "")
        }
    }
}

// MARK: One named function (memtrace's allocator functions)

/// Where a function of a target's object file lies for a uprobe: the file as pytap opens
/// it (through /proc/PID/root, so containers and chroots work) and the file offset of the
/// function's first instruction (what the kernel's uprobe interface takes).
public struct UprobeTarget: Sendable, Equatable {
    public var function: String
    /// The path the kernel resolves: /proc/PID/root + the path the target sees.
    public var path: String
    public var fileOffset: UInt64
    /// The function's first bytes, from the file (empty when unknown).
    public var entryBytes: [UInt8]

    public init(function: String, path: String, fileOffset: UInt64, entryBytes: [UInt8] = []) {
        self.function = function
        self.path = path
        self.fileOffset = fileOffset
        self.entryBytes = entryBytes
    }

    /// The file offset of a plain entry probe: past leading instructions the kernel would
    /// single-step, where that is safe (`EmulatedProbeSite`). Not for uretprobes.
    public var entryProbeOffset: UInt64 { fileOffset + UInt64(EmulatedProbeSite.offset(in: entryBytes)) }
}

extension UprobeTarget {
    /// Finds `function` in `object` by its symbols — `.dynsym`, `.symtab` (local symbols
    /// too, e.g. a `static` function) or the separate debug file's — in process `pid`.
    /// Nil when no symbol names it or its address lies in no loaded segment of the file.
    /// A function that link-time optimization made local is found under its LTO name
    /// (`NAME.lto_priv.N`, e.g. Debian's static python3.11); its `.cold` part is not the entry.
    public static func locate(_ function: String, in object: LoadedObject, pid: Int32) -> UprobeTarget? {
        guard let symbol = functionSymbol(function, in: object), symbol.value != 0,
              let offset = object.elf.fileOffset(ofVirtualAddress: symbol.value) else { return nil }
        let path = "/proc/\(pid)/root" + (object.path.hasPrefix("/") ? object.path : "/" + object.path)
        let entryBytes = object.elf.bytes(atVirtualAddress: symbol.value, count: Int(min(symbol.size, 32))) ?? []
        return UprobeTarget(function: function, path: path, fileOffset: offset, entryBytes: entryBytes)
    }

    private static func functionSymbol(_ function: String, in object: LoadedObject) -> ELFSymbol? {
        if let exact = object.symbol(named: function) { return exact }
        let ltoPrefix = function + ".lto_priv."
        for elf in [object.elf, object.debugFile].compactMap({ $0 }) {
            let candidates = elf.allSymbols().filter {
                $0.type == ELFSymbol.typeFunction && $0.name.hasPrefix(ltoPrefix) && !$0.name.hasSuffix(".cold")
            }
            // Two local functions of that name: which one is meant cannot be told.
            if candidates.count == 1 { return candidates[0] }
            if !candidates.isEmpty { return nil }
        }
        return nil
    }
}
