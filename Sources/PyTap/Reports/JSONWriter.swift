/// A small streaming JSON writer: keys in the order written, strings escaped per RFC 8259.
/// pytap's JSON contracts (`dump --json`, speedscope) need a fixed key order and explicit
/// nulls, which this gives without a Codable round trip.
public struct JSONWriter {
    public private(set) var output = ""
    private var needsComma: [Bool] = [false]

    public init() {}

    private mutating func separator() {
        if needsComma[needsComma.count - 1] { output += "," }
        needsComma[needsComma.count - 1] = true
    }

    public mutating func beginObject() { separator(); output += "{"; needsComma.append(false) }
    public mutating func endObject() { output += "}"; needsComma.removeLast() }
    public mutating func beginArray() { separator(); output += "["; needsComma.append(false) }
    public mutating func endArray() { output += "]"; needsComma.removeLast() }

    /// Writes `"key":` ; the value written next belongs to it.
    public mutating func key(_ name: String) {
        separator()
        JSONWriter.appendQuoted(name, to: &output)
        output += ":"
        needsComma[needsComma.count - 1] = false
    }

    public mutating func string(_ value: String?) {
        separator()
        if let value { JSONWriter.appendQuoted(value, to: &output) } else { output += "null" }
    }

    public mutating func number<T: BinaryInteger>(_ value: T?) {
        separator()
        if let value { output += String(value) } else { output += "null" }
    }

    public mutating func number(_ value: Double) {
        separator()
        output += value.isFinite ? String(value) : "null"
    }

    public mutating func bool(_ value: Bool) {
        separator()
        output += value ? "true" : "false"
    }

    public mutating func null() {
        separator()
        output += "null"
    }

    public mutating func field(_ name: String, _ value: String?) { key(name); string(value) }
    public mutating func field<T: BinaryInteger>(_ name: String, _ value: T?) { key(name); number(value) }
    public mutating func field(_ name: String, _ value: Bool) { key(name); bool(value) }

    static func appendQuoted(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }
}
