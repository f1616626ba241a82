import Synchronization

/// The function symbols of one object file (`.symtab`, `.dynsym`, and its separate debug
/// file's), sorted by address, answering "which function holds this link-time address".
public final class SymbolIndex: Sendable {
    /// One function: where it starts, how long it is (0: unknown) and its name.
    public struct Function: Sendable, Equatable {
        public var address: UInt64
        public var size: UInt64
        public var name: String
    }

    /// A lookup's answer: the function and how far into it the address is.
    public struct Match: Sendable, Equatable {
        public var function: Function
        public var offset: UInt64
        public var name: String { function.name }
    }

    /// Sorted by address, one entry per address (aliases resolved, see `preferred`): built
    /// from the symbols, or read from a `SymbolIndexFile` a previous pytap wrote.
    private let table: Table

    enum Table: Sendable {
        case built([Function])
        case stored(SymbolIndexFile)
    }

    /// Every function, in address order (names made on demand for a stored index).
    public var functions: [Function] {
        switch table {
        case .built(let functions): return functions
        case .stored(let file): return (0..<file.count).map { file.function(at: $0) }
        }
    }

    /// An unsized symbol (hand-written assembly) is taken to reach at most this far, and
    /// never past the next symbol.
    static let unsizedReach: UInt64 = 1 << 16
    /// How many earlier symbols a lookup checks for one that encloses the address
    /// (a function with a smaller symbol inside it).
    static let enclosingSearch = 16

    /// The index of `elf` and, when given, its debug file (same link-time addresses).
    public convenience init(elf: ELFFile, debugFile: ELFFile? = nil) {
        var symbols = elf.allSymbols()
        if let debugFile { symbols += debugFile.allSymbols() }
        self.init(symbols: symbols)
    }

    public init(symbols: [ELFSymbol]) {
        let candidates = symbols.filter { symbol in
            (symbol.type == ELFSymbol.typeFunction || symbol.type == ELFSymbol.typeIndirectFunction)
                && symbol.isDefined && symbol.sectionIndex < 0xff00 && symbol.value != 0 && !symbol.name.isEmpty
        }.sorted { left, right in
            left.value != right.value ? left.value < right.value : SymbolIndex.preferred(left, over: right)
        }
        var functions = [Function]()
        functions.reserveCapacity(candidates.count)
        for symbol in candidates {
            if let last = functions.last, last.address == symbol.value {
                // An alias of the function just added (sorted so the preferred one came first);
                // keep the larger size, in case the preferred name was unsized.
                if last.size == 0 { functions[functions.count - 1].size = symbol.size }
                continue
            }
            functions.append(Function(address: symbol.value, size: symbol.size, name: symbol.name))
        }
        table = .built(functions)
    }

    /// An index read back from its file.
    init(stored file: SymbolIndexFile) {
        table = .stored(file)
    }

    /// Among aliases at one address: a sized symbol, then global over weak over local,
    /// then the name with fewer leading underscores (`malloc` over `__libc_malloc`), then the shorter.
    static func preferred(_ left: ELFSymbol, over right: ELFSymbol) -> Bool {
        if (left.size > 0) != (right.size > 0) { return left.size > 0 }
        func rank(_ binding: UInt8) -> Int { binding == 1 ? 0 : binding == 2 ? 1 : 2 }
        if rank(left.binding) != rank(right.binding) { return rank(left.binding) < rank(right.binding) }
        let leftUnderscores = left.name.prefix { $0 == "_" }.count
        let rightUnderscores = right.name.prefix { $0 == "_" }.count
        if leftUnderscores != rightUnderscores { return leftUnderscores < rightUnderscores }
        if left.name.utf8.count != right.name.utf8.count { return left.name.utf8.count < right.name.utf8.count }
        return left.name < right.name
    }

    public var count: Int {
        switch table {
        case .built(let functions): return functions.count
        case .stored(let file): return file.count
        }
    }

    private func address(at index: Int) -> UInt64 {
        switch table {
        case .built(let functions): return functions[index].address
        case .stored(let file): return file.address(at: index)
        }
    }

    private func size(at index: Int) -> UInt64 {
        switch table {
        case .built(let functions): return functions[index].size
        case .stored(let file): return file.size(at: index)
        }
    }

    private func function(at index: Int) -> Function {
        switch table {
        case .built(let functions): return functions[index]
        case .stored(let file): return file.function(at: index)
        }
    }

    /// The function holding a link-time address, or nil (between functions, or past a sized one's end).
    public func lookup(_ address: UInt64) -> Match? {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if self.address(at: middle) <= address { low = middle + 1 } else { high = middle }
        }
        var index = low - 1
        let stop = max(0, index - SymbolIndex.enclosingSearch)
        while index >= stop {
            let offset = address - self.address(at: index)
            let size = self.size(at: index)
            if size > 0 {
                if offset < size { return Match(function: function(at: index), offset: offset) }
            } else if index == low - 1 && offset < SymbolIndex.unsizedReach {
                return Match(function: function(at: index), offset: offset)
            }
            index -= 1
        }
        return nil
    }
}

/// Symbol indexes shared across processes, keyed by build-id (by path without one); an
/// index is also kept on disk (`SymbolIndexFile`, in `CacheDirectory`) so the next pytap
/// maps it instead of reading and sorting the symbol tables again.
public final class SymbolIndexCache: Sendable {
    private let indexes = Mutex<[String: SymbolIndex]>([:])
    public let directory: CacheDirectory

    public init(directory: CacheDirectory = .shared) {
        self.directory = directory
    }

    public func index(for elf: ELFFile, debugFile: @autoclosure () -> ELFFile?) -> SymbolIndex {
        let key = elf.cacheKey
        if let cached = indexes.withLock({ $0[key] }) { return cached }
        let debug = debugFile()
        let index: SymbolIndex
        if let stored = SymbolIndexFile.load(from: directory, elf: elf, debugFile: debug) {
            index = SymbolIndex(stored: stored)
        } else {
            index = SymbolIndex(elf: elf, debugFile: debug)
            SymbolIndexFile.store(index.functions, in: directory, elf: elf, debugFile: debug)
        }
        return indexes.withLock { entries in
            if let raced = entries[key] { return raced }
            entries[key] = index
            return index
        }
    }

    /// The index of a loaded object, its debug file included.
    public func index(for object: LoadedObject) -> SymbolIndex {
        index(for: object.elf, debugFile: object.debugFile)
    }
}
