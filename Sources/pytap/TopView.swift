import PyTap

/// `pytap top`'s loop: counts samples per stack for the current interval and overall,
/// and draws the function table (in place on a terminal, or as plain text).
final class TopView {
    let target: PythonTarget
    let sampler: any StackSampler
    /// Samples a second asked for: turns sample counts into seconds.
    let rate: Int
    /// How stacks are captured, shown in the header with --native.
    let capture: String?
    let interval: Double
    let once: Bool
    private let terminal: RawTerminal?
    private var intervalCounts: [SampledThread: [UInt32: Int]] = [:]
    /// The last complete interval: what the table shows, also when redrawn for a key.
    private var shownCounts: [SampledThread: [UInt32: Int]] = [:]
    private var totalCounts: [SampledThread: [UInt32: Int]] = [:]
    private var threadOrder: [SampledThread] = []
    private var functionKeys: [UInt32: Frame] = [:]
    private var sortKey: FunctionTable.SortKey
    private var selected: Int? = nil   // index into threadOrder; nil = all threads
    private var threadFilter: String?
    private var paused = false
    private var quit = false
    private var lastTable: [String] = []
    /// A failed write of a plain table (a closed pipe, a full disk): top stops.
    private(set) var outputError: OutputError?
    /// Whether top itself ended (q, --once, output closed), not a signal or the target's exit.
    var stoppedByPytap: Bool { quit }

    init(target: PythonTarget, sampler: any StackSampler, rate: Int, capture: String?, interval: Double, threadFilter: String?,
         interactive: Bool, once: Bool, sortKey: FunctionTable.SortKey = .own) {
        self.sortKey = sortKey
        self.target = target
        self.sampler = sampler
        self.rate = rate
        self.capture = capture
        self.interval = interval
        self.threadFilter = threadFilter
        self.once = once
        self.terminal = interactive ? RawTerminal() : nil
    }

    /// Samples and draws until quit, a stop signal or the target's exit.
    @discardableResult
    func run() -> SamplerStop {
        var nextRefresh = interval
        let stop = sampler.run(
            shouldStop: { stats in
                if InterruptFlag.isSet || quit { return true }
                if let terminal {
                    if terminal.suspendIfRequested() { redraw() }
                    handle(terminal.pendingKeys())
                }
                if stats.elapsed >= nextRefresh {
                    nextRefresh = stats.elapsed + interval
                    refresh(stats)
                    if once { quit = true }
                }
                return quit
            },
            record: { thread, stack, _, _ in
                if intervalCounts[thread] == nil { threadOrder.append(thread) }
                intervalCounts[thread, default: [:]][stack, default: 0] += 1
                totalCounts[thread, default: [:]][stack, default: 0] += 1
            },
            progress: { _ in })
        if let terminal {
            // Never draw on the user's normal screen once it is back.
            terminal.restore()
        } else if stop == .targetExited && !once && outputError == nil {
            refresh(sampler.statistics)
        }
        if case .targetExecutedNonPython(let executable) = stop {
            writeStandardError("pytap: process \(target.pid) exec'd \(executable.escapingControlCharacters), which is not Python\n")
        }
        if stop == .targetExited { writeStandardError("pytap: process \(target.pid) exited\n") }
        return stop
    }

    private func handle(_ keys: [UInt8]) {
        for key in keys {
            switch key {
            case UInt8(ascii: "q"), UInt8(ascii: "Q"), 3: quit = true
            case UInt8(ascii: "1"): sortKey = .own; redraw()
            case UInt8(ascii: "2"): sortKey = .total; redraw()
            case UInt8(ascii: "p"), UInt8(ascii: " "): paused.toggle(); redraw()
            case UInt8(ascii: "t"):
                threadFilter = nil
                if threadOrder.isEmpty { selected = nil } else if let current = selected {
                    selected = current + 1 < threadOrder.count ? current + 1 : nil
                } else {
                    selected = 0
                }
                redraw()
            default: break
            }
        }
    }

    private func refresh(_ stats: SamplerStatistics) {
        if !paused {
            shownCounts = intervalCounts
            lastTable = render(stats)
        }
        intervalCounts.removeAll(keepingCapacity: true)
        if let terminal {
            terminal.draw(lastTable)
        } else {
            do {
                try writeStandardOutput(lastTable.joined(separator: "\n") + "\n\n")
            } catch let error as OutputError {
                outputError = error
                quit = true
            } catch {}
        }
    }

    private func redraw() {
        lastTable = render(sampler.statistics)
        terminal?.draw(lastTable)
    }

    /// Which threads the table counts.
    private func included(_ thread: SampledThread) -> Bool {
        if let filter = threadFilter {
            return String(thread.tid ?? -1) == filter || "0x" + String(thread.ident, radix: 16) == filter.lowercased()
                || thread.name == filter
        }
        guard let selected, selected < threadOrder.count else { return true }
        return threadOrder[selected] == thread
    }

    private func merged(_ counts: [SampledThread: [UInt32: Int]]) -> [UInt32: Int] {
        var result = [UInt32: Int]()
        for (thread, perStack) in counts where included(thread) {
            result.merge(perStack, uniquingKeysWith: +)
        }
        return result
    }

    private func render(_ stats: SamplerStatistics) -> [String] {
        let rate = Double(max(1, self.rate))
        var recent = FunctionTable(counts: merged(shownCounts), stacks: sampler.stacks, frames: sampler.frames, functionKeys: &functionKeys)
        let overall = FunctionTable(counts: merged(totalCounts), stacks: sampler.stacks, frames: sampler.frames, functionKeys: &functionKeys)
        recent.sort(by: sortKey)
        var overallByFunction = [Frame: FunctionStats]()
        for row in overall.rows { overallByFunction[row.function] = row }
        // Functions seen before but idle in this interval stay listed (at 0%) below the active ones.
        var rows = recent.rows
        let active = Set(rows.map(\.function))
        var rest = overall.rows.filter { !active.contains($0.function) }
        rest.sort { sortKey == .own ? $0.own > $1.own : $0.total > $1.total }
        rows += rest.map { FunctionStats(function: $0.function, own: 0, total: 0) }

        let width = terminal != nil ? Terminal.columns : 120
        let height = terminal != nil ? Terminal.rows : 40
        let name = target.source.name()
        var scope = "all threads"
        if let filter = threadFilter {
            scope = "thread \(filter)"
        } else if let selected, selected < threadOrder.count {
            scope = threadOrder[selected].label
        }
        var lines = [String]()
        lines.append(clip("pytap top: process \(target.pid) (\(name)), Python \(target.version)   \(String(format1: stats.elapsed))s"
                          + (paused ? "   [paused]" : ""), width))
        lines.append(clip("samples: \(grouped(recent.samples)) in the last interval, \(grouped(overall.samples)) in all, "
                          + "\(Int(stats.roundRate.rounded()))/s; threads \(stats.threads); torn \(stats.torn); \(scope)", width))
        if let capture { lines.append(clip("capture: " + capture, width)) }
        lines.append(clip("keys: 1 sort by own, 2 sort by total, t threads, p pause, q quit   (sorted by \(sortKey.rawValue))", width))
        lines.append("")
        let kinds = capture != nil
        lines.append(clip("  %Own  %Total  OwnTime  TotalTime  " + (kinds ? "Kind    " : "") + "Function (file:line)", width))
        let room = terminal != nil ? max(1, height - lines.count - 1) : 30
        for row in rows.prefix(room) {
            let total = overallByFunction[row.function]
            var line = pad(percent(row.own, of: recent.samples), 6) + pad(percent(row.total, of: recent.samples), 8)
            line += pad(String(format1: Double(total?.own ?? 0) / rate) + "s", 9)
            line += pad(String(format1: Double(total?.total ?? 0) / rate) + "s", 11)
            let columns = line.count + 2
            if kinds { line += "  " + TopView.kindColumn(row.function.kind) }
            line += (kinds ? "" : "  ") + TopView.functionColumn(row.function)
            lines.append(colored(clip(line, width), from: columns, kind: row.function.kind))
        }
        if rows.isEmpty { lines.append("  (no samples yet: no thread ran Python code on a CPU; --idle includes waiting threads)") }
        return lines
    }

    /// "py", "native", "kernel" (or "-" for a marker such as `<GC>`), padded to 8 columns.
    static func kindColumn(_ kind: FrameKind) -> String {
        let name: String
        switch kind {
        case .python: name = "py"
        case .native: name = "native"
        case .kernel: name = "kernel"
        case .marker: name = "-"
        }
        return name + String(repeating: " ", count: 8 - name.count)
    }

    /// A function's label; a native one followed by its object, `deflate [libz.so.1]`, as
    /// `dump` shows it, unless its label already starts with it (`libz.so.1.2.13+0x5d80`).
    static func functionColumn(_ function: Frame) -> String {
        guard function.kind == .native, let module = function.module,
              !function.label.hasPrefix(ObjectSymbolizer.fileName(of: module) + "+0x") else { return function.label }
        return function.label + function.moduleTag
    }

    /// On a terminal, a row's kind and function (from column `from` on) in the flame graph's
    /// colours: native blue, kernel purple; Python and markers as they are.
    private func colored(_ line: String, from column: Int, kind: FrameKind) -> String {
        guard terminal != nil, capture != nil, line.count > column else { return line }
        let code: String
        switch kind {
        case .native: code = "34"
        case .kernel: code = "35"
        case .python, .marker: return line
        }
        let split = line.index(line.startIndex, offsetBy: column)
        return String(line[..<split]) + "\u{1b}[" + code + "m" + String(line[split...]) + "\u{1b}[0m"
    }

    private func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    /// `text` (target data escaped) cut to `width` columns.
    private func clip(_ text: String, _ width: Int) -> String {
        let text = text.escapingControlCharacters
        return text.count <= width ? text : String(text.prefix(max(0, width - 2))) + ".."
    }
}
