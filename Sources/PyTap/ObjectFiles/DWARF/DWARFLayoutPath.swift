/// A parsed layout path, the notation of `LayoutTables`:
/// `Type.member.member`, `struct tag.member`, `sizeof(Type)`, `enum(NAME)`.
enum DWARFLayoutPath: Equatable {
    case memberOffset(DWARFTypeName, members: [String])
    case size(DWARFTypeName)
    case enumerator(String)

    init(parsing text: String) throws {
        let path = text.trimmingSpaces
        if let inner = path.inside(prefix: "sizeof(") {
            guard !inner.isEmpty else { throw DWARFError.badPath(text) }
            self = .size(try DWARFTypeName(parsing: inner, path: text))
        } else if let inner = path.inside(prefix: "enum(") {
            guard !inner.isEmpty, !inner.contains(" "), !inner.contains(".") else { throw DWARFError.badPath(text) }
            self = .enumerator(inner)
        } else {
            let parts = path.split(separator: ".", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
            guard parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }), parts.dropFirst().allSatisfy({ !$0.contains(" ") }) else {
                throw DWARFError.badPath(text)
            }
            self = .memberOffset(try DWARFTypeName(parsing: parts[0], path: text), members: Array(parts.dropFirst()))
        }
    }
}

/// A C type name as written in a layout path: a plain name (typedef, tag or base type,
/// in that order) or `struct X` / `union X` / `enum X`.
struct DWARFTypeName: Equatable, CustomStringConvertible {
    enum Keyword: String {
        case `struct`, union, `enum`
    }

    var keyword: Keyword?
    var name: String

    init(keyword: Keyword?, name: String) {
        self.keyword = keyword
        self.name = name
    }

    init(parsing text: String, path: String) throws {
        let words = text.split(separator: " ").map(String.init)
        if words.count == 2, let keyword = Keyword(rawValue: words[0]) {
            self.init(keyword: keyword, name: words[1])
        } else {
            // Base types have several words ("unsigned int"): keep them as written, single-spaced.
            guard !words.isEmpty else { throw DWARFError.badPath(path) }
            self.init(keyword: nil, name: words.joined(separator: " "))
        }
    }

    var description: String { keyword.map { "\($0.rawValue) \(name)" } ?? name }
}

private extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while scalars.first == " " || scalars.first == "\t" { scalars = scalars.dropFirst() }
        while scalars.last == " " || scalars.last == "\t" { scalars = scalars.dropLast() }
        return String(scalars)
    }

    /// "prefix(INNER)" -> "INNER", trimmed; nil if the text is not of that shape.
    func inside(prefix: String) -> String? {
        guard hasPrefix(prefix), hasSuffix(")"), count > prefix.count else { return nil }
        return String(dropFirst(prefix.count).dropLast()).trimmingSpaces
    }
}
