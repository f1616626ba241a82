/// Brendan Gregg's collapsed ("folded") stacks: one line per distinct stack,
/// `root;caller;leaf COUNT`, frames named by `Frame.label`. `flamegraph.pl` and inferno
/// read it, and so does speedscope.
///
/// Lines are sorted (by UTF-8 bytes, like `LC_ALL=C sort`) so equal profiles give equal
/// files. A `;` inside a label becomes `:` (`;` separates frames), line breaks become
/// spaces and other control characters are escaped (`\x1b`); stacks whose labels then
/// coincide are merged into one line. A sample without
/// frames is written as the single frame `(no frames)`.
public struct FoldedWriter: Sendable {
    public init() {}

    /// The label of `frame` as a folded-stack frame.
    public static func sanitize(_ label: String) -> String {
        var text = ""
        text.unicodeScalars.reserveCapacity(label.unicodeScalars.count)
        for scalar in label.unicodeScalars {
            switch scalar {
            case ";": text.unicodeScalars.append(":")
            case "\n", "\r": text.unicodeScalars.append(" ")
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text.escapingControlCharacters
    }

    /// (stack text, samples) per line, in output order.
    public func lines(_ profile: Profile) -> [(stack: String, count: Int)] {
        var labels = [UInt32: String]()
        var counts = [String: Int]()
        for (stack, count) in profile.countsByStack() {
            let ids = profile.stacks[stack]
            var parts = [String]()
            parts.reserveCapacity(ids.count)
            for id in ids {
                if let known = labels[id] {
                    parts.append(known)
                } else {
                    let label = FoldedWriter.sanitize(profile.frames[id].label)
                    labels[id] = label
                    parts.append(label)
                }
            }
            let line = parts.isEmpty ? "(no frames)" : parts.joined(separator: ";")
            counts[line, default: 0] += count
        }
        return counts.map { (stack: $0.key, count: $0.value) }
            .sorted { $0.stack.utf8.lexicographicallyPrecedes($1.stack.utf8) }
    }

    public func render(_ profile: Profile) -> String {
        var out = ""
        for line in lines(profile) {
            out += line.stack
            out += " "
            out += String(line.count)
            out += "\n"
        }
        return out
    }
}
