/// The call graphs of `callgraph` and `py-callgraph` as text (SystemTap's `thread_indent`
/// shape: µs since the trigger's entry, `name(tid):`, indented by depth), as JSON (each
/// invocation's call tree) and as Chrome trace / Perfetto JSON (complete events).
public enum CallGraphWriter {
    /// One invocation as text, a line per entry and return:
    /// `     0 python(1234): -> builtin_sorted` / `    12 python(1234):  -> list_sort`.
    public static func text(_ invocation: CallInvocation) -> String {
        var output = ""
        let thread = "\(invocation.threadName)(\(invocation.tid)):"
        func line(_ time: Double, _ depth: Int, _ arrow: String, _ name: String) {
            let micros = String(Int(time.rounded(.down)))
            output += String(repeating: " ", count: max(0, 6 - micros.count)) + micros + " " + thread
            output += String(repeating: " ", count: depth) + " " + arrow + " " + name + "\n"
        }
        func walk(_ node: CallNode, _ depth: Int) {
            line(node.start, depth, "->", node.name)
            for child in node.children { walk(child, depth + 1) }
            if let end = node.end { line(end, depth, "<-", node.name) }
        }
        walk(invocation.root, 0)
        if invocation.truncated { output += "       (the trace of this invocation ended before its return was seen)\n" }
        return output
    }

    /// Every invocation: `[{"invocation", "tid", "thread", "truncated", "call": node}]`,
    /// a node being `{"name", "start_us", "end_us" (null: return not seen), "calls": [node]}`.
    public static func json(_ invocations: [CallInvocation]) -> String {
        var json = JSONWriter()
        json.beginArray()
        for invocation in invocations {
            json.beginObject()
            json.field("invocation", invocation.number)
            json.field("tid", invocation.tid)
            json.field("thread", invocation.threadName)
            json.field("truncated", invocation.truncated)
            json.key("call")
            writeNode(invocation.root, into: &json)
            json.endObject()
        }
        json.endArray()
        return json.output + "\n"
    }

    private static func writeNode(_ node: CallNode, into json: inout JSONWriter) {
        json.beginObject()
        json.field("name", node.name)
        json.key("start_us")
        json.number(node.start)
        json.key("end_us")
        if let end = node.end { json.number(end) } else { json.null() }
        json.key("calls")
        json.beginArray()
        for child in node.children { writeNode(child, into: &json) }
        json.endArray()
        json.endObject()
    }

    /// Chrome trace event format (JSON object form), one complete event (`"ph": "X"`) per
    /// call, timestamps in µs of CLOCK_MONOTONIC; opens in Perfetto and chrome://tracing.
    /// A call whose return was not seen lasts until the last thing seen inside it.
    public static func chromeTrace(_ invocations: [CallInvocation], pid: Int32) -> String {
        var json = JSONWriter()
        json.beginObject()
        json.key("traceEvents")
        json.beginArray()
        for invocation in invocations {
            let base = Double(invocation.startTime) / 1000
            func walk(_ node: CallNode) {
                json.beginObject()
                json.field("name", node.name)
                json.field("cat", "call")
                json.field("ph", "X")
                json.key("ts")
                json.number(base + node.start)
                json.key("dur")
                json.number(max(0, lastTime(in: node) - node.start))
                json.field("pid", pid)
                json.field("tid", invocation.tid)
                json.key("args")
                json.beginObject()
                json.field("invocation", invocation.number)
                json.field("returned", node.end != nil)
                json.endObject()
                json.endObject()
                for child in node.children { walk(child) }
            }
            walk(invocation.root)
        }
        json.endArray()
        json.field("displayTimeUnit", "ns")
        json.endObject()
        return json.output + "\n"
    }

    /// The return time, else the latest time seen in the subtree.
    static func lastTime(in node: CallNode) -> Double {
        if let end = node.end { return end }
        return node.children.map(lastTime(in:)).max().map { max($0, node.start) } ?? node.start
    }
}
