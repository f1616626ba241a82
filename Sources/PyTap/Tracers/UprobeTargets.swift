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
    public static func locate(_ function: String, in object: LoadedObject, pid: Int32) -> UprobeTarget? {
        guard let symbol = object.symbol(named: function), symbol.value != 0,
              let offset = object.elf.fileOffset(ofVirtualAddress: symbol.value) else { return nil }
        let path = "/proc/\(pid)/root" + (object.path.hasPrefix("/") ? object.path : "/" + object.path)
        return UprobeTarget(function: function, path: path, fileOffset: offset)
    }
}
