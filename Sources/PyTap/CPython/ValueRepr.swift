/// Short, Python-like text of an object in remote memory, for `dump --locals`: the value
/// itself for None, bools, ints, floats, str and bytes (long ones cut), `<list of 12>`
/// for containers and `<Type object at 0x…>` for everything else. Only exact built-in
/// types (by `tp_name`) are decoded; subclasses show as objects.
extension ObjectReader {
    /// Characters of a str or bytes shown before "...".
    public static let maximumReprCharacters = 100
    /// Bits of an int shown in decimal; larger ints show as `<int of N bits>`.
    public static let maximumReprIntBits = 2048

    public func shortRepr(_ object: UInt64) -> String {
        guard object != 0 else { return "NULL" }
        guard let typeName = try? typeNameOf(object) else { return "<unreadable object at \(hexAddress(object))>" }
        do {
            if let text = try builtinRepr(object, typeName: typeName) { return text }
        } catch {
            return "<\(typeName) object at \(hexAddress(object)) (unreadable)>"
        }
        return "<\(typeName) object at \(hexAddress(object))>"
    }

    /// The repr of a built-in value, nil for types shown as `<Type object at …>`.
    private func builtinRepr(_ object: UInt64, typeName: String) throws -> String? {
        let python2 = layout.traits.strings == .python2
        switch typeName {
        case "NoneType":
            return "None"
        case "bool":
            // 2.7: a PyIntObject; 3.x: an int of zero or one digit.
            let isTrue = python2 ? try memory.readInteger(object &+ UInt64(try layout.require(.intValue27)), as: Int64.self) != 0
                                 : try bigInteger(object).bitLength != 0
            return isTrue ? "True" : "False"
        case "int", "long":
            let digits = try bigInteger(object)
            if digits.bitLength > ObjectReader.maximumReprIntBits { return "<int of \(digits.bitLength) bits>" }
            let text = (digits.negative ? "-" : "") + ObjectReader.decimal(digits.magnitude, digitBits: digits.digitBits)
            return python2 && typeName == "long" ? text + "L" : text
        case "float":
            let bits = try memory.readInteger(object &+ UInt64(try layout.require(.floatValue)), as: UInt64.self)
            return ObjectReader.floatRepr(Double(bitPattern: bits))
        case "str" where !python2, "unicode" where python2:
            let (text, cut) = try textPrefix(object, limit: ObjectReader.maximumReprCharacters)
            return (python2 ? "u" : "") + ObjectReader.stringRepr(text, escapeNonASCII: python2) + (cut ? "..." : "")
        case "bytes" where !python2, "str" where python2:
            let limit = ObjectReader.maximumReprCharacters
            let size = try memory.readInteger(object &+ UInt64(try layout.require(.varObjectSize)), as: Int64.self)
            guard size >= 0 else { throw ObjectReadError.implausible(what: "bytes length", value: size) }
            let payload = try memory.readBytes(object &+ UInt64(try layout.require(.bytesData)), count: Int(min(size, Int64(limit))))
            return (python2 ? "" : "b") + ObjectReader.bytesRepr(payload) + (size > Int64(limit) ? "..." : "")
        case "list", "tuple":
            let count = try memory.readInteger(object &+ UInt64(try layout.require(.varObjectSize)), as: Int64.self)
            return "<\(typeName) of \(count)>"
        case "dict":
            let count = try memory.readInteger(object &+ UInt64(try layout.require(.dictUsed)), as: Int64.self)
            return "<dict of \(count)>"
        default:
            return nil
        }
    }

    /// The first `limit` characters of a str (2.7: unicode), and whether there were more.
    func textPrefix(_ object: UInt64, limit: Int) throws -> (text: String, cut: Bool) {
        let length = try memory.readInteger(object &+ UInt64(try layout.require(.unicodeLength)), as: Int64.self)
        guard length >= 0 else { throw ObjectReadError.implausible(what: "str length", value: length) }
        let shown = Int(min(length, Int64(limit)))
        let kind: Int
        let data: UInt64
        switch layout.traits.strings {
        case .python2:
            kind = try layout.require(.unicodeCharSize27)
            data = try memory.readPointer(object &+ UInt64(try layout.require(.unicodeData)))
        case .pep393:
            let bits = layout.traits.unicodeState
            let state = try memory.readInteger(object &+ UInt64(try layout.require(.unicodeState)), as: UInt32.self)
            kind = Int((state >> bits.kindShift) & bits.kindMask)
            guard kind == 1 || kind == 2 || kind == 4 else { throw ObjectReadError.unsupportedString(kind: kind) }
            if (state >> bits.compactBit) & 1 == 1 {
                let ascii = (state >> bits.asciiBit) & 1 == 1
                data = object &+ UInt64(try layout.require(ascii ? .asciiObjectSize : .compactUnicodeObjectSize))
            } else {
                data = try memory.readPointer(object &+ UInt64(try layout.require(.unicodeData)))
            }
        }
        return (ObjectReader.decode(try memory.readBytes(data, count: shown * kind), kind: kind), length > Int64(limit))
    }

    /// Sign, bit length and digits (least significant first) of an int; the digits only when
    /// it has at most `maximumReprIntBits` bits (else only the top one is read).
    func bigInteger(_ object: UInt64) throws -> (negative: Bool, magnitude: [UInt32], digitBits: Int, bitLength: Int) {
        let digitsOffset = try layout.require(.longDigits)
        let digitSize = try layout.require(.digitSize)
        let digitBits = digitSize == 4 ? 30 : 15
        if layout.traits.longs == .python2, try typeNameOf(object) == "int" {
            let value = try memory.readInteger(object &+ UInt64(try layout.require(.intValue27)), as: Int64.self)
            var magnitude = [UInt32(value.magnitude & 0x3fff_ffff), UInt32(value.magnitude >> 30 & 0x3fff_ffff),
                             UInt32(value.magnitude >> 60)]
            while magnitude.last == 0 { magnitude.removeLast() }
            return (value < 0, magnitude, 30, ObjectReader.bitLength(magnitude, digitBits: 30))
        }
        let header = try longHeader(try memory.readStruct(object, count: digitsOffset))
        let negative = header.negative
        let count = Int64(min(header.count, 1 << 40))
        // Python caps an int at about 2^63 digits; beyond 2^40 this is garbage.
        guard count >= 0, count < 1 << 40 else { throw ObjectReadError.implausible(what: "int digits", value: count) }
        if count > Int64(ObjectReader.maximumReprIntBits / digitBits + 1) {
            let topAddress = object &+ UInt64(digitsOffset) &+ UInt64((count - 1) * Int64(digitSize))
            let top = digitSize == 4 ? try memory.readInteger(topAddress, as: UInt32.self)
                                     : UInt32(try memory.readInteger(topAddress, as: UInt16.self))
            return (negative, [], digitBits, Int(count - 1) * digitBits + (32 - top.leadingZeroBitCount))
        }
        let bytes = try memory.readStruct(object &+ UInt64(digitsOffset), count: Int(count) * digitSize)
        var magnitude = [UInt32]()
        for index in 0..<Int(count) {
            magnitude.append(digitSize == 4 ? try bytes.u32(4 * index) : UInt32(try bytes.u16(2 * index)))
        }
        while magnitude.last == 0 { magnitude.removeLast() }
        return (negative, magnitude, digitBits, ObjectReader.bitLength(magnitude, digitBits: digitBits))
    }

    static func bitLength(_ digits: [UInt32], digitBits: Int) -> Int {
        guard let top = digits.last else { return 0 }
        return (digits.count - 1) * digitBits + (32 - top.leadingZeroBitCount)
    }

    /// Decimal text of a magnitude given as base-2^digitBits digits, least significant first.
    static func decimal(_ digits: [UInt32], digitBits: Int) -> String {
        // Convert to base 10^9 limbs by Horner's rule from the most significant digit.
        var limbs: [UInt64] = [0]
        let base: UInt64 = 1_000_000_000
        for digit in digits.reversed() {
            var carry = UInt64(digit)
            for index in limbs.indices {
                let value = (limbs[index] << UInt64(digitBits)) + carry
                limbs[index] = value % base
                carry = value / base
            }
            while carry > 0 {
                limbs.append(carry % base)
                carry /= base
            }
        }
        var text = String(limbs.last ?? 0)
        for limb in limbs.dropLast().reversed() {
            let part = String(limb)
            text += String(repeating: "0", count: 9 - part.count) + part
        }
        return text
    }

    /// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation for
    /// decimal exponents -4 ..< 16, else `d.ddde+XX`; integers get ".0".
    static func floatRepr(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description is the shortest round-trip form too; take its digits and exponent.
        let swift = value.magnitude.description
        var mantissa = Substring(swift)
        var exponent = 0
        if let e = swift.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = swift[..<e]
            exponent = Int(swift[swift.index(after: e)...]) ?? 0
        }
        var digits = ""
        var pointPosition = mantissa.count
        if let point = mantissa.firstIndex(of: ".") {
            pointPosition = mantissa.distance(from: mantissa.startIndex, to: point)
            digits = String(mantissa[..<point]) + String(mantissa[mantissa.index(after: point)...])
        } else {
            digits = String(mantissa)
        }
        // Normalise: strip leading zeros (moving the point) and trailing zeros.
        var decimalPoint = pointPosition + exponent
        while digits.count > 1, digits.first == "0" {
            digits.removeFirst()
            decimalPoint -= 1
        }
        while digits.count > 1, digits.last == "0" { digits.removeLast() }
        let sign = value < 0 ? "-" : ""
        if decimalPoint > -4 && decimalPoint <= 16 {
            if decimalPoint <= 0 { return sign + "0." + String(repeating: "0", count: -decimalPoint) + digits }
            if decimalPoint >= digits.count { return sign + digits + String(repeating: "0", count: decimalPoint - digits.count) + ".0" }
            let split = digits.index(digits.startIndex, offsetBy: decimalPoint)
            return sign + digits[..<split] + "." + digits[split...]
        }
        let shownExponent = decimalPoint - 1
        var text = sign + String(digits.first ?? "0")
        if digits.count > 1 { text += "." + digits.dropFirst() }
        let magnitude = String(abs(shownExponent))
        return text + "e" + (shownExponent < 0 ? "-" : "+") + (magnitude.count < 2 ? "0" : "") + magnitude
    }

    /// Python 3's `repr(str)` (with `escapeNonASCII`, Python 2's `repr(unicode)` without the u).
    static func stringRepr(_ text: String, escapeNonASCII: Bool) -> String {
        let quote: Character = text.contains("'") && !text.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(scalar) == quote {
                    out += "\\" + String(quote)
                } else if scalar.value < 0x20 || scalar.value == 0x7f || (scalar.value >= 0x80 && (escapeNonASCII || !isPrintable(scalar))) {
                    out += escaped(scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + String(quote)
    }

    /// Python's `repr(bytes)` without the b prefix (also 2.7's `repr(str)`).
    static func bytesRepr(_ bytes: [UInt8]) -> String {
        let quote: UInt8 = bytes.contains(0x27) && !bytes.contains(0x22) ? 0x22 : 0x27
        var out = String(UnicodeScalar(quote))
        for byte in bytes {
            switch byte {
            case 0x5c: out += "\\\\"
            case 0x0a: out += "\\n"
            case 0x0d: out += "\\r"
            case 0x09: out += "\\t"
            case quote: out += "\\" + String(UnicodeScalar(quote))
            case 0x20..<0x7f: out.unicodeScalars.append(UnicodeScalar(byte))
            default: out += escaped(UInt32(byte))
            }
        }
        return out + String(UnicodeScalar(quote))
    }

    private static func escaped(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        if value < 0x100 { return "\\x" + String(repeating: "0", count: 2 - hex.count) + hex }
        if value < 0x10000 { return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex }
        return "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// `str.isprintable()` of one character: not a control, format, surrogate, private-use,
    /// unassigned or separator character (the space excepted).
    private static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator:
            return false
        case .spaceSeparator:
            return scalar == " "
        default:
            return true
        }
    }
}
