import CLinux
import Glibc

/// Readable names for mangled symbols of native frames: C++ (Itanium ABI, `_Z…`) and Rust's
/// legacy scheme (`_ZN…17h<hash>E`, the Itanium grammar with `$…$` escapes and a hash
/// component, both dropped) and Rust's v0 scheme (`_R…`, `RustV0Demangler`). Anything that is
/// not a well-formed mangled name comes back unchanged.
public enum SymbolDemangler {
    /// Names longer than this are left mangled (the demangler's work grows with the input).
    static let maximumLength = 4096

    public static func demangle(_ symbol: String) -> String {
        if symbol.hasPrefix("_R") {
            guard symbol.utf8.count <= maximumLength else { return symbol }
            return RustV0Demangler.demangle(symbol) ?? symbol
        }
        guard symbol.hasPrefix("_Z"), symbol.utf8.count <= maximumLength else { return symbol }
        // Rust's `.llvm.N` copies are the same function: the suffix goes (the C++ demangler
        // refuses it, and the hash goes anyway).
        let rustEnd = rustLegacyEnd(symbol)
        let mangled = rustEnd.map { String(decoding: Array(symbol.utf8)[...$0], as: UTF8.self) } ?? symbol
        var status: Int32 = 0
        guard let demangled = __cxa_demangle(mangled, nil, nil, &status) else { return symbol }
        defer { free(demangled) }
        guard status == 0 else { return symbol }
        let name = String(cString: demangled)
        return rustEnd == nil ? name : rustLegacy(name)
    }

    /// Where a Rust legacy name `_ZN…17h<16 hex digits>E` ends (its `E`), before any
    /// `.suffix` (`.llvm.N`); nil for other names.
    static func rustLegacyEnd(_ symbol: String) -> Int? {
        guard symbol.hasPrefix("_ZN") else { return nil }
        let bytes = Array(symbol.utf8)
        let marker = Array("17h".utf8)
        for end in bytes.indices where bytes[end] == UInt8(ascii: "E") && end >= 23
            && (end == bytes.count - 1 || bytes[end + 1] == UInt8(ascii: ".")) {
            if Array(bytes[(end - 19)..<(end - 16)]) == marker, isHex(bytes[(end - 16)..<end]) { return end }
        }
        return nil
    }

    private static func isHex(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.count == 16 && bytes.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// The demangled legacy Rust path with its hash component dropped and its escapes
    /// (`$LT$`, `$u20$`, `..`) written out.
    static func rustLegacy(_ demangled: String) -> String {
        var bytes = Array(demangled.utf8)
        // The hash is the last path component, `::h` + 16 hex digits.
        let marker = Array("::h".utf8)
        if bytes.count >= 19, let start = (0...(bytes.count - 19)).last(where: {
            Array(bytes[$0..<($0 + 3)]) == marker && isHex(bytes[($0 + 3)..<($0 + 19)])
        }) {
            bytes.removeSubrange(start..<(start + 19))
        }
        // A component that starts with an escape is written `_$…`.
        let components = String(decoding: bytes, as: UTF8.self).split(separator: "::", omittingEmptySubsequences: false)
        return components.map { unescapeRust(String($0.hasPrefix("_$") ? $0.dropFirst() : $0)) }.joined(separator: "::")
    }

    private static let rustEscapes: [String: String] = [
        "SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ",",
    ]

    /// Rust legacy escapes: `$NAME$` and `$uXX$` (a code point in hex), `..` for `::`.
    static func unescapeRust(_ text: String) -> String {
        var output = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(where: { $0 == "$" || $0 == "." }) {
            output += rest[..<dollar]
            rest = rest[dollar...]
            if rest.hasPrefix("..") {
                output += "::"
                rest = rest.dropFirst(2)
                continue
            }
            if rest.hasPrefix("."), !rest.hasPrefix("..") {
                output += "."
                rest = rest.dropFirst()
                continue
            }
            let body = rest.dropFirst()
            if let close = body.firstIndex(of: "$") {
                let code = body[..<close]
                if let known = rustEscapes[String(code)] {
                    output += known
                    rest = body[body.index(after: close)...]
                    continue
                }
                if code.hasPrefix("u"), let value = UInt32(code.dropFirst(), radix: 16), let scalar = Unicode.Scalar(value) {
                    output.unicodeScalars.append(scalar)
                    rest = body[body.index(after: close)...]
                    continue
                }
            }
            output += "$"
            rest = body
        }
        output += rest
        return output
    }
}
