/// How a `FlameGraphWriter` colours frames instead of by kind: `frame` gives the fill (an
/// SVG colour) and an optional note for the tooltip of a frame, from its labels root first
/// (empty for the root) and its samples; `legend` the swatches shown under the title.
public struct FlameGraphColoring: Sendable {
    public var frame: @Sendable (_ path: [String], _ samples: Int) -> (fill: String, note: String?)
    public var legend: [(color: String, name: String)]

    public init(legend: [(color: String, name: String)],
                frame: @escaping @Sendable (_ path: [String], _ samples: Int) -> (fill: String, note: String?)) {
        self.frame = frame
        self.legend = legend
    }
}

/// Folded stacks read back: `root;caller;leaf COUNT` per line (what `FoldedWriter`,
/// `flamegraph.pl`'s stackcollapse scripts and py-spy write). Blank lines are skipped; a line
/// without a count is an error naming it. Equal stacks on several lines add up.
public struct FoldedStacks: Sendable {
    /// (frames root first, samples), in first-seen order.
    public private(set) var rows: [(frames: [String], count: Int)] = []
    public private(set) var total = 0

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case badLine(number: Int, text: String)
        case tooManySamples(line: Int)

        public var description: String {
            switch self {
            case .badLine(let number, let text):
                return "line \(number) is not 'frame;frame;... COUNT': \(text.prefix(80))"
            case .tooManySamples(let line):
                return "line \(line): the sample counts add up to more than \(Int.max)"
            }
        }
    }

    public init(parsing text: String) throws {
        var index = [[String]: Int]()
        var number = 0
        // "\r\n" is one Character: split on it too.
        for trimmed in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            if trimmed.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            guard let space = trimmed.lastIndex(of: " "), let count = Int(trimmed[trimmed.index(after: space)...]), count >= 0,
                  space > trimmed.startIndex else {
                throw ParseError.badLine(number: number, text: String(trimmed))
            }
            let (sum, overflow) = total.addingReportingOverflow(count)
            guard !overflow else { throw ParseError.tooManySamples(line: number) }
            total = sum
            let frames = trimmed[..<space].split(separator: ";", omittingEmptySubsequences: false).map(String.init)
            if let known = index[frames] {
                rows[known].count += count
            } else {
                index[frames] = rows.count
                rows.append((frames, count))
            }
        }
    }

    /// Samples per stack prefix: a frame's samples in a flame graph, keyed by its path.
    public func samplesByPath() -> [[String]: Int] {
        var counts = [[String]: Int]()
        for (frames, count) in rows {
            for end in 0...frames.count { counts[Array(frames[0..<end]), default: 0] += count }
        }
        return counts
    }

    /// Frames (as their labels) and stacks interned, and samples per stack id: what the
    /// flame graph writer draws, without a sample each.
    func interned() -> (frames: FrameTable, stacks: StackTable, counts: [UInt32: Int]) {
        var frames = FrameTable()
        var stacks = StackTable()
        var counts = [UInt32: Int]()
        for (labels, count) in rows where count > 0 {
            let stack = stacks.id(for: labels.map { frames.id(for: .marker($0)) })
            counts[stack, default: 0] += count
        }
        return (frames, stacks, counts)
    }
}

/// A differential flame graph (Brendan Gregg's): the frames of `after`, as wide as their
/// samples there, each coloured by how its share of all samples changed from `before` —
/// red grew, blue shrank, the deeper the larger the change relative to the largest change
/// in the graph; grey unchanged. Shares are normalised by each profile's total, so profiles
/// of different lengths compare. Frames only in `before` have no width and are not drawn.
public struct DifferentialFlameGraph: Sendable {
    public var before: FoldedStacks
    public var after: FoldedStacks

    public init(before: FoldedStacks, after: FoldedStacks) {
        self.before = before
        self.after = after
    }

    public static let unchangedColor = "rgb(225,225,225)"

    /// Red for growth, blue for shrinkage; `intensity` 0...1.
    public static func color(change: Double, intensity: Double) -> String {
        guard change != 0 else { return unchangedColor }
        let t = min(max(intensity, 0), 1)
        let faint = Int((225 - 185 * t).rounded())
        return change > 0 ? "rgb(255,\(faint),\(faint))" : "rgb(\(faint),\(faint),255)"
    }

    /// Change of share (after minus before, 0...1 units) of every frame of `after`, by path.
    public func changes() -> [[String]: Double] {
        let beforeCounts = before.samplesByPath()
        let afterCounts = after.samplesByPath()
        let beforeTotal = Double(max(before.total, 1))
        let afterTotal = Double(max(after.total, 1))
        var changes = [[String]: Double]()
        for (path, count) in afterCounts {
            changes[path] = Double(count) / afterTotal - Double(beforeCounts[path] ?? 0) / beforeTotal
        }
        return changes
    }

    public func render(title: String, width: Int = 1200) -> String {
        let changes = changes()
        let largest = changes.values.map(abs).max() ?? 0
        let beforeCounts = before.samplesByPath()
        let beforeTotal = before.total
        let coloring = FlameGraphColoring(
            legend: [(DifferentialFlameGraph.color(change: 1, intensity: 1), "grew"),
                     (DifferentialFlameGraph.color(change: -1, intensity: 1), "shrank"),
                     (DifferentialFlameGraph.unchangedColor, "unchanged")]) { path, samples in
            let change = changes[path] ?? 0
            let fill = DifferentialFlameGraph.color(change: change, intensity: largest > 0 ? abs(change) / largest : 0)
            let was = beforeCounts[path] ?? 0
            let sign = change > 0 ? "+" : change < 0 ? "-" : "±"
            return (fill, "before \(was) of \(beforeTotal); \(sign)\(points(abs(change))) points")
        }
        let metadata = ProfileMetadata(command: title, pid: 0, pythonVersion: nil, rate: 0, startTime: 0, duration: 0)
        let subtitle = "before \(before.total) samples, after \(after.total); red grew, blue shrank (share of all samples)"
        let (frames, stacks, counts) = after.interned()
        return FlameGraphWriter(width: width, title: title, subtitle: subtitle, coloring: coloring)
            .render(Profile(metadata: metadata, frames: frames, stacks: stacks), counts: counts)
    }
}

/// A share difference (0...1) as percentage points with two decimals.
fileprivate func points(_ share: Double) -> String {
    let hundredths = Int((share * 10_000).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
}
