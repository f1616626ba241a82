/// The one number formatter of pytap's reports and terminal output, without Foundation.
public enum NumberFormat {
    /// `value` with exactly `digits` decimals (0 to 6), rounded half away from zero.
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "0" }
        let places = min(max(digits, 0), 6)
        var factor = 1.0
        for _ in 0..<places { factor *= 10 }
        let scaled = (abs(value) * factor).rounded()
        guard scaled < 9e15 else { return String(value) }
        let units = Int64(scaled)
        let whole = units / Int64(factor)
        var text = (value < 0 && units != 0 ? "-" : "") + String(whole)
        if places > 0 {
            let fraction = String(units % Int64(factor))
            text += "." + String(repeating: "0", count: places - fraction.count) + fraction
        }
        return text
    }

    /// 12345 as "12,345".
    public static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out += "," }
            out.append(character)
        }
        return value < 0 ? "-" + out : out
    }

    /// `part` of `total` as a percentage with one decimal ("0.0%" when total is 0).
    public static func percent(_ part: Int, of total: Int) -> String {
        guard total > 0 else { return "0.0%" }
        return fixed(Double(part) * 100 / Double(total), 1) + "%"
    }
}
