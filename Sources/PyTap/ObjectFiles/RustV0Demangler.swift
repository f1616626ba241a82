/// Rust's v0 symbol mangling (`_R…`, RFC 2603) written out as rustc-demangle's `{:#}` form
/// does: paths, generic arguments, types and constants, without crate hashes or
/// disambiguators (`_RNvCs15kBYyAo9fc_7mycrate7example` → `mycrate::example`).
///
/// Symbols are untrusted input: backrefs may only point backwards, nesting is capped, and
/// so are the parse steps (backrefs can double the work each time) and the output size.
/// Any malformed symbol gives nil, never a trap.
struct RustV0Demangler {
    /// Nesting deeper than this (paths in types in paths…, and backrefs) is refused; each
    /// level costs a few stack frames, and real symbols stay well below it.
    static let maximumDepth = 150
    /// Parse steps per symbol: backrefs re-read earlier parts, so work can grow exponentially.
    static let maximumSteps = 100_000
    static let maximumOutputLength = 16 * 1024
    /// rustc-demangle decodes punycode identifiers of up to this many characters.
    static let maximumPunycodeLength = 128

    private enum Failure: Error { case invalid }

    /// The bytes after `_R`; positions (and backrefs) count from here.
    private let input: [UInt8]
    private var position = 0
    private var depth = 0
    private var steps = 0
    private var output: [UInt8] = []
    /// False while a part that is parsed but not shown is read (an impl's own path, the
    /// instantiating crate): nothing is written and backrefs are not followed.
    private var printing = true
    /// Lifetimes bound by the `for<…>` binders around the current type.
    private var boundLifetimes = 0

    /// The demangled symbol, or nil if `symbol` is not a well-formed v0 name.
    static func demangle(_ symbol: String) -> String? {
        var bytes = Array(symbol.utf8)
        guard bytes.count > 2, bytes[0] == UInt8(ascii: "_"), bytes[1] == UInt8(ascii: "R"),
              bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
        // ThinLTO's `.llvm.<hex>` copies are the same function: the suffix goes.
        if let llvm = range(of: Array(".llvm.".utf8), in: bytes),
           bytes[llvm.upperBound...].allSatisfy({ isUpperHex($0) || $0 == UInt8(ascii: "@") }) {
            bytes.removeSubrange(llvm.lowerBound...)
        }
        var demangler = RustV0Demangler(input: Array(bytes[2...]))
        guard let first = demangler.input.first, isUpper(first) else { return nil }
        do {
            try demangler.path(inValue: true)
            // The instantiating crate is parsed, not shown.
            if let next = demangler.peek(), isUpper(next) {
                demangler.printing = false
                try demangler.path(inValue: false)
            }
        } catch { return nil }
        // Other period-separated suffixes (`.0.0`, `.cold`) are kept as they are.
        let suffix = demangler.input[demangler.position...]
        if let dot = suffix.first {
            guard dot == UInt8(ascii: "."), suffix.allSatisfy({ (0x21...0x7e).contains($0) }) else { return nil }
        }
        return String(decoding: demangler.output + suffix, as: UTF8.self)
    }

    private init(input: [UInt8]) {
        self.input = input
    }

    // MARK: Output

    private mutating func write(_ text: String) throws(Failure) {
        guard printing else { return }
        output.append(contentsOf: text.utf8)
        guard output.count <= Self.maximumOutputLength else { throw .invalid }
    }

    private mutating func write(_ bytes: ArraySlice<UInt8>) throws(Failure) {
        guard printing else { return }
        output.append(contentsOf: bytes)
        guard output.count <= Self.maximumOutputLength else { throw .invalid }
    }

    // MARK: Lexing

    private func peek() -> UInt8? {
        position < input.count ? input[position] : nil
    }

    private mutating func eat(_ character: Unicode.Scalar) -> Bool {
        guard peek() == UInt8(ascii: character) else { return false }
        position += 1
        return true
    }

    private mutating func next() throws(Failure) -> UInt8 {
        guard let byte = peek() else { throw .invalid }
        position += 1
        return byte
    }

    /// Counts a nesting level (and a step); `leave()` gives the level back.
    private mutating func enter() throws(Failure) {
        depth += 1
        steps += 1
        guard depth <= Self.maximumDepth, steps <= Self.maximumSteps else { throw .invalid }
    }

    private mutating func leave() {
        depth -= 1
    }

    /// A base-62 number ending in `_`: `_` is 0, `<digits>_` is digits + 1.
    private mutating func base62() throws(Failure) -> UInt64 {
        if eat("_") { return 0 }
        var value: UInt64 = 0
        while !eat("_") {
            let byte = try next()
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): digit = 10 + byte - UInt8(ascii: "a")
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): digit = 36 + byte - UInt8(ascii: "A")
            default: throw .invalid
            }
            let (product, overflow) = value.multipliedReportingOverflow(by: 62)
            guard !overflow, product <= UInt64.max - UInt64(digit) else { throw .invalid }
            value = product + UInt64(digit)
        }
        guard value < UInt64.max else { throw .invalid }
        return value + 1
    }

    /// `<tag><base62>` is base62 + 1; no tag is 0.
    private mutating func optionalBase62(_ tag: Unicode.Scalar) throws(Failure) -> UInt64 {
        guard eat(tag) else { return 0 }
        let value = try base62()
        guard value < UInt64.max else { throw .invalid }
        return value + 1
    }

    /// A disambiguator (`s<base62>`): parsed, never shown in this form.
    private mutating func disambiguator() throws(Failure) -> UInt64 {
        try optionalBase62("s")
    }

    /// An identifier: `[u]<decimal length>[_]<bytes>`; with `u`, the part after the last `_`
    /// is punycode for the non-ASCII characters.
    private mutating func identifier() throws(Failure) -> Identifier {
        let isPunycode = eat("u")
        guard let first = peek(), isDigit(first) else { throw .invalid }
        position += 1
        var length = Int(first - UInt8(ascii: "0"))
        if length != 0 {
            while let byte = peek(), isDigit(byte) {
                position += 1
                length = length * 10 + Int(byte - UInt8(ascii: "0"))
                guard length <= input.count else { throw .invalid }
            }
        }
        _ = eat("_")
        guard length <= input.count - position else { throw .invalid }
        let bytes = input[position..<(position + length)]
        position += length
        guard isPunycode else { return Identifier(ascii: bytes, punycode: []) }
        if let separator = bytes.lastIndex(of: UInt8(ascii: "_")) {
            let identifier = Identifier(ascii: bytes[..<separator], punycode: bytes[(separator + 1)...])
            guard !identifier.punycode.isEmpty else { throw .invalid }
            return identifier
        }
        guard !bytes.isEmpty else { throw .invalid }
        return Identifier(ascii: bytes[bytes.startIndex..<bytes.startIndex], punycode: bytes)
    }

    /// Lowercase hex digits ending in `_` (constants' values).
    private mutating func hexNibbles() throws(Failure) -> ArraySlice<UInt8> {
        let start = position
        while true {
            let byte = try next()
            if byte == UInt8(ascii: "_") { return input[start..<(position - 1)] }
            guard isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) else { throw .invalid }
        }
    }

    // MARK: Paths

    private mutating func path(inValue: Bool) throws(Failure) {
        try enter()
        defer { leave() }
        let tag = try next()
        switch tag {
        case UInt8(ascii: "C"):
            _ = try disambiguator()
            try write(identifier())
        case UInt8(ascii: "N"):
            let namespace = try next()
            guard isUpper(namespace) || isLower(namespace) else { throw .invalid }
            try path(inValue: inValue)
            let disambiguator = try disambiguator()
            let name = try identifier()
            if isUpper(namespace) {
                // Closures, shims and other compiler-made items: `{closure#0}`.
                try write("::{")
                switch namespace {
                case UInt8(ascii: "C"): try write("closure")
                case UInt8(ascii: "S"): try write("shim")
                default: try write(String(UnicodeScalar(namespace)))
                }
                if !name.isEmpty {
                    try write(":")
                    try write(name)
                }
                try write("#\(disambiguator)}")
            } else if !name.isEmpty {
                try write("::")
                try write(name)
            }
        case UInt8(ascii: "M"), UInt8(ascii: "X"), UInt8(ascii: "Y"):
            if tag != UInt8(ascii: "Y") {
                // The impl's own path (where it is written) is not shown.
                _ = try disambiguator()
                try silently { (this) throws(Failure) in try this.path(inValue: false) }
            }
            try write("<")
            try type()
            if tag != UInt8(ascii: "M") {
                try write(" as ")
                try path(inValue: false)
            }
            try write(">")
        case UInt8(ascii: "I"):
            try path(inValue: inValue)
            if inValue { try write("::") }
            try write("<")
            try list(separator: ", ") { (this) throws(Failure) in try this.genericArgument() }
            try write(">")
        case UInt8(ascii: "B"):
            try backref { (this) throws(Failure) in try this.path(inValue: inValue) }
        default:
            throw .invalid
        }
    }

    private mutating func genericArgument() throws(Failure) {
        if eat("L") {
            try lifetime(base62())
        } else if eat("K") {
            try constant(inValue: false)
        } else {
            try type()
        }
    }

    // MARK: Types

    private static func basicType(_ tag: UInt8) -> String? {
        switch UnicodeScalar(tag) {
        case "b": "bool"
        case "c": "char"
        case "e": "str"
        case "u": "()"
        case "a": "i8"
        case "s": "i16"
        case "l": "i32"
        case "x": "i64"
        case "n": "i128"
        case "i": "isize"
        case "h": "u8"
        case "t": "u16"
        case "m": "u32"
        case "y": "u64"
        case "o": "u128"
        case "j": "usize"
        case "f": "f32"
        case "d": "f64"
        case "z": "!"
        case "p": "_"
        case "v": "..."
        default: nil
        }
    }

    private mutating func type() throws(Failure) {
        let tag = try next()
        if let basic = Self.basicType(tag) { return try write(basic) }
        try enter()
        defer { leave() }
        switch UnicodeScalar(tag) {
        case "R", "Q":
            try write("&")
            if eat("L") {
                let index = try base62()
                if index != 0 {
                    try lifetime(index)
                    try write(" ")
                }
            }
            if tag == UInt8(ascii: "Q") { try write("mut ") }
            try type()
        case "P", "O":
            try write(tag == UInt8(ascii: "P") ? "*const " : "*mut ")
            try type()
        case "A", "S":
            try write("[")
            try type()
            if tag == UInt8(ascii: "A") {
                try write("; ")
                try constant(inValue: true)
            }
            try write("]")
        case "T":
            try write("(")
            let count = try list(separator: ", ") { (this) throws(Failure) in try this.type() }
            try write(count == 1 ? ",)" : ")")
        case "F":
            try binder { (this) throws(Failure) in try this.functionType() }
        case "D":
            try write("dyn ")
            try binder { (this) throws(Failure) in
                _ = try this.list(separator: " + ") { (this) throws(Failure) in try this.dynTrait() }
            }
            guard eat("L") else { throw .invalid }
            let index = try base62()
            if index != 0 {
                try write(" + ")
                try lifetime(index)
            }
        case "B":
            try backref { (this) throws(Failure) in try this.type() }
        case "W":
            try type()
            try write(" is ")
            try pattern()
        default:
            // A named type: the tag starts its path.
            position -= 1
            try path(inValue: false)
        }
    }

    /// `[U][K<abi>]<parameter types>E<return type>`, inside the type's binder.
    private mutating func functionType() throws(Failure) {
        let isUnsafe = eat("U")
        var abi: ArraySlice<UInt8>?
        if eat("K") {
            if eat("C") {
                abi = ArraySlice("C".utf8)
            } else {
                let name = try identifier()
                guard !name.ascii.isEmpty, name.punycode.isEmpty else { throw .invalid }
                abi = name.ascii
            }
        }
        if isUnsafe { try write("unsafe ") }
        if let abi {
            // A `-` in the ABI name is mangled as `_`.
            try write("extern \"")
            try write(ArraySlice(abi.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : $0 }))
            try write("\" ")
        }
        try write("fn(")
        try list(separator: ", ") { (this) throws(Failure) in try this.type() }
        try write(")")
        if !eat("u") {
            try write(" -> ")
            try type()
        }
    }

    /// A trait of a `dyn` type, with its associated type bindings (`p<name><type>`) inside
    /// the trait's own `<…>`: `dyn FnOnce<(), Output = ()>`.
    private mutating func dynTrait() throws(Failure) {
        var open = try pathLeavingGenericsOpen()
        while eat("p") {
            try write(open ? ", " : "<")
            open = true
            try write(identifier())
            try write(" = ")
            if eat("K") { try constant(inValue: false) } else { try type() }
        }
        if open { try write(">") }
    }

    /// A path whose generic arguments stay open (no `>`); true if they were.
    private mutating func pathLeavingGenericsOpen() throws(Failure) -> Bool {
        if eat("B") {
            var open = false
            try backref { (this) throws(Failure) in open = try this.pathLeavingGenericsOpen() }
            return open
        }
        if eat("I") {
            try enter()
            defer { leave() }
            try path(inValue: false)
            try write("<")
            try list(separator: ", ") { (this) throws(Failure) in try this.genericArgument() }
            return true
        }
        try path(inValue: false)
        return false
    }

    /// A pattern type's pattern: `R<const><const>` (a range), `O<patterns>E` (or), `N` (!null).
    private mutating func pattern() throws(Failure) {
        try enter()
        defer { leave() }
        switch UnicodeScalar(try next()) {
        case "R":
            try constant(inValue: false)
            try write("..=")
            try constant(inValue: false)
        case "O":
            try pattern()
            while !eat("E") {
                try write(" | ")
                try pattern()
            }
        case "N":
            try write("!null")
        default:
            throw .invalid
        }
    }

    // MARK: Lifetimes and binders

    /// `G<base62>` binds that many lifetimes (plus one) around `body`: `for<'a, 'b> `.
    private mutating func binder(_ body: (inout Self) throws(Failure) -> Void) throws(Failure) {
        let count = try optionalBase62("G")
        guard printing else { return try body(&self) }
        guard count <= UInt64(Self.maximumDepth) else { throw .invalid }
        if count > 0 {
            try write("for<")
            for index in 0..<Int(count) {
                if index > 0 { try write(", ") }
                boundLifetimes += 1
                try lifetime(1)
            }
            try write("> ")
        }
        try body(&self)
        boundLifetimes -= Int(count)
    }

    /// Lifetime 0 is `'_`; n counts back from the innermost bound one (`'a` is the outermost).
    private mutating func lifetime(_ index: UInt64) throws(Failure) {
        guard printing else { return }
        guard index != 0 else { return try write("'_") }
        guard index <= UInt64(boundLifetimes) else { throw .invalid }
        let depth = boundLifetimes - Int(index)
        if depth < 26 {
            try write("'" + String(UnicodeScalar(UInt8(ascii: "a") + UInt8(depth))))
        } else {
            try write("'_\(depth)")
        }
    }

    // MARK: Constants

    private mutating func constant(inValue: Bool) throws(Failure) {
        let tag = try next()
        try enter()
        defer { leave() }
        // Anything but a literal needs braces as a generic argument (not inside another value).
        var braced = false
        func openBrace(_ this: inout Self) throws(Failure) {
            guard !inValue else { return }
            braced = true
            try this.write("{")
        }
        switch UnicodeScalar(tag) {
        case "p":
            try write("_")
        case "h", "t", "m", "y", "o", "j":
            try unsignedConstant()
        case "a", "s", "l", "x", "n", "i":
            if eat("n") { try write("-") }
            try unsignedConstant()
        case "b":
            switch Self.integer(try hexNibbles()) {
            case 0: try write("false")
            case 1: try write("true")
            default: throw .invalid
            }
        case "c":
            guard let value = Self.integer(try hexNibbles()), value <= UInt64(UInt32.max),
                  let scalar = Unicode.Scalar(UInt32(value)) else { throw .invalid }
            try quoted([scalar], quote: "'")
        case "e":
            // A `str` value: `*"…"` (the literal itself is a `&str`).
            try openBrace(&self)
            try write("*")
            try stringLiteral()
        case "R", "Q":
            if tag == UInt8(ascii: "R"), eat("e") {
                try stringLiteral()
            } else {
                try openBrace(&self)
                try write(tag == UInt8(ascii: "R") ? "&" : "&mut ")
                try constant(inValue: true)
            }
        case "A":
            try openBrace(&self)
            try write("[")
            try list(separator: ", ") { (this) throws(Failure) in try this.constant(inValue: true) }
            try write("]")
        case "T":
            try openBrace(&self)
            try write("(")
            let count = try list(separator: ", ") { (this) throws(Failure) in try this.constant(inValue: true) }
            try write(count == 1 ? ",)" : ")")
        case "V":
            try openBrace(&self)
            try path(inValue: true)
            switch UnicodeScalar(try next()) {
            case "U":
                break
            case "T":
                try write("(")
                try list(separator: ", ") { (this) throws(Failure) in try this.constant(inValue: true) }
                try write(")")
            case "S":
                try write(" { ")
                try list(separator: ", ") { (this) throws(Failure) in
                    _ = try this.disambiguator()
                    try this.write(this.identifier())
                    try this.write(": ")
                    try this.constant(inValue: true)
                }
                try write(" }")
            default:
                throw .invalid
            }
        case "B":
            try backref { (this) throws(Failure) in try this.constant(inValue: inValue) }
        default:
            throw .invalid
        }
        if braced { try write("}") }
    }

    /// An integer constant's value in decimal, or in hex if it does not fit 64 bits
    /// (the `{:#}` form has no type suffix).
    private mutating func unsignedConstant() throws(Failure) {
        let nibbles = try hexNibbles()
        if let value = Self.integer(nibbles) {
            try write(String(value))
        } else {
            try write("0x")
            try write(nibbles)
        }
    }

    private static func integer(_ nibbles: ArraySlice<UInt8>) -> UInt64? {
        let digits = nibbles.drop { $0 == UInt8(ascii: "0") }
        guard digits.count <= 16 else { return nil }
        return digits.reduce(0) { ($0 << 4) | UInt64(hexValue($1)) }
    }

    /// Hex pairs of UTF-8 bytes, written as a quoted, escaped string.
    private mutating func stringLiteral() throws(Failure) {
        let nibbles = try hexNibbles()
        guard nibbles.count % 2 == 0 else { throw .invalid }
        let bytes = stride(from: nibbles.startIndex, to: nibbles.endIndex, by: 2).map {
            hexValue(nibbles[$0]) << 4 | hexValue(nibbles[$0 + 1])
        }
        var scalars: [Unicode.Scalar] = []
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        decoding: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): scalars.append(scalar)
            case .emptyInput: break decoding
            case .error: throw .invalid
            }
        }
        try quoted(scalars, quote: "\"")
    }

    /// Rust's `escape_debug` inside quotes (the other kind of quote is left as it is).
    private mutating func quoted(_ scalars: [Unicode.Scalar], quote: Unicode.Scalar) throws(Failure) {
        var text = String(quote)
        for scalar in scalars {
            switch scalar {
            case "\t": text += "\\t"
            case "\r": text += "\\r"
            case "\n": text += "\\n"
            case "\\": text += "\\\\"
            case "\0": text += "\\0"
            case "'", "\"": text += scalar == quote ? "\\\(scalar)" : String(scalar)
            default:
                if Self.isPrintable(scalar) {
                    text.unicodeScalars.append(scalar)
                } else {
                    text += "\\u{" + String(scalar.value, radix: 16) + "}"
                }
            }
        }
        text.unicodeScalars.append(quote)
        try write(text)
    }

    private static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.properties.isGraphemeExtend { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned:
            return false
        case .spaceSeparator:
            return scalar == " "
        default:
            return true
        }
    }

    // MARK: Structure

    /// Elements up to the closing `E`, with `separator` between them; the count.
    @discardableResult
    private mutating func list(separator: String, _ element: (inout Self) throws(Failure) -> Void) throws(Failure) -> Int {
        var count = 0
        while !eat("E") {
            if count > 0 { try write(separator) }
            try element(&self)
            count += 1
        }
        return count
    }

    /// `B<base62>`: the same production again, read from an earlier position (never this
    /// one or a later one, so no loops; each jump is a nesting level). Not followed while
    /// nothing is printed.
    private mutating func backref(_ production: (inout Self) throws(Failure) -> Void) throws(Failure) {
        let start = position - 1
        let target = try base62()
        guard target < UInt64(start) else { throw .invalid }
        guard printing else { return }
        try enter()
        defer { leave() }
        let resume = position
        position = Int(target)
        try production(&self)
        position = resume
    }

    /// Parses with output off (the part is checked but not shown).
    private mutating func silently(_ production: (inout Self) throws(Failure) -> Void) throws(Failure) {
        let wasPrinting = printing
        printing = false
        defer { printing = wasPrinting }
        try production(&self)
    }

    private mutating func write(_ identifier: Identifier) throws(Failure) {
        guard printing else { return }
        if let decoded = identifier.decoded() {
            try write(decoded)
        } else if !identifier.punycode.isEmpty {
            // Undecodable punycode is shown in its standard form.
            try write("punycode{")
            if !identifier.ascii.isEmpty {
                try write(identifier.ascii)
                try write("-")
            }
            try write(identifier.punycode)
            try write("}")
        } else {
            try write(identifier.ascii)
        }
    }

    private static func range(of needle: [UInt8], in bytes: [UInt8]) -> Range<Int>? {
        guard bytes.count >= needle.count else { return nil }
        for start in 0...(bytes.count - needle.count) where bytes[start..<(start + needle.count)].elementsEqual(needle) {
            return start..<(start + needle.count)
        }
        return nil
    }
}

/// An identifier's ASCII part and the punycode (RFC 3492, `_` for `-`) of its other characters.
private struct Identifier {
    let ascii: ArraySlice<UInt8>
    let punycode: ArraySlice<UInt8>

    var isEmpty: Bool { ascii.isEmpty && punycode.isEmpty }

    /// The decoded name; nil without punycode, or for punycode that does not decode (or
    /// decodes to more than `maximumPunycodeLength` characters).
    func decoded() -> String? {
        guard !punycode.isEmpty, ascii.count <= RustV0Demangler.maximumPunycodeLength else { return nil }
        var characters = ascii.map { Unicode.Scalar($0) }
        let base = 36, tMin = 1, tMax = 26, skew = 38
        var damp = 700, bias = 72, index = 0, codePoint = 0x80
        var digits = punycode.makeIterator()
        var nextDigit = digits.next()
        while nextDigit != nil {
            // One delta: a variable-length base-36 number.
            var delta = 0, weight = 1, k = 0
            while true {
                k += base
                let threshold = min(max(k - bias, tMin), tMax)
                guard let byte = nextDigit else { return nil }
                nextDigit = digits.next()
                let digit: Int
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"): digit = Int(byte - UInt8(ascii: "a"))
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = 26 + Int(byte - UInt8(ascii: "0"))
                default: return nil
                }
                let (step, stepOverflow) = digit.multipliedReportingOverflow(by: weight)
                let (sum, sumOverflow) = delta.addingReportingOverflow(step)
                guard !stepOverflow, !sumOverflow else { return nil }
                delta = sum
                if digit < threshold { break }
                let (newWeight, weightOverflow) = weight.multipliedReportingOverflow(by: base - threshold)
                guard !weightOverflow else { return nil }
                weight = newWeight
            }
            let length = characters.count + 1
            let (newIndex, indexOverflow) = index.addingReportingOverflow(delta)
            guard !indexOverflow else { return nil }
            codePoint += min(newIndex / length, 0x110000)
            index = newIndex % length
            guard codePoint <= 0x10FFFF, let scalar = Unicode.Scalar(UInt32(codePoint)),
                  characters.count < RustV0Demangler.maximumPunycodeLength else { return nil }
            characters.insert(scalar, at: index)
            index += 1
            // Bias adaptation for the next delta.
            delta /= damp
            damp = 2
            delta += delta / length
            k = 0
            while delta > ((base - tMin) * tMax) / 2 {
                delta /= base - tMin
                k += base
            }
            bias = k + ((base - tMin + 1) * delta) / (delta + skew)
        }
        var text = ""
        text.unicodeScalars.append(contentsOf: characters)
        return text
    }
}

private func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
private func isUpper(_ byte: UInt8) -> Bool { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) }
private func isLower(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }
private func isUpperHex(_ byte: UInt8) -> Bool { isDigit(byte) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte) }
private func hexValue(_ byte: UInt8) -> UInt8 { isDigit(byte) ? byte - UInt8(ascii: "0") : byte - UInt8(ascii: "a") + 10 }
