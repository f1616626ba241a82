/// Where a function of a target's object file lies for a uprobe: the file as pytap opens
/// it (through /proc/PID/root, so containers and chroots work) and the file offset of the
/// function's first instruction (what the kernel's uprobe interface takes).
public struct UprobeTarget: Sendable, Equatable {
    public var function: String
    /// The path the kernel resolves: /proc/PID/root + the path the target sees.
    public var path: String
    public var fileOffset: UInt64

    public init(function: String, path: String, fileOffset: UInt64) {
        self.function = function
        self.path = path
        self.fileOffset = fileOffset
    }
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
        return UprobeTarget(function: function, path: path, fileOffset: offset)
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
