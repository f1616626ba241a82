extension String {
    /// The text with control characters (C0, DEL, C1) shown as escapes — `\n`, `\r`, `\t`,
    /// else `\x1b` style — so names and paths read from a target cannot move the cursor,
    /// retitle the window or clear the screen of the terminal that shows them. Text outputs
    /// (dump, top, folded, messages) use it; JSON and SVG quote in their own syntax.
    public var escapingControlCharacters: String {
        guard unicodeScalars.contains(where: \.isControlCharacter) else { return self }
        var text = ""
        text.unicodeScalars.reserveCapacity(unicodeScalars.count + 8)
        for scalar in unicodeScalars {
            guard scalar.isControlCharacter else {
                text.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            default:
                let hex = String(scalar.value, radix: 16)
                text += "\\x" + (hex.count < 2 ? "0" : "") + hex
            }
        }
        return text
    }
}

extension Unicode.Scalar {
    /// C0 controls, DEL and C1 controls (terminals act on all of them).
    var isControlCharacter: Bool { value < 0x20 || (0x7f...0x9f).contains(value) }
}
