/// Writes an `AsyncSnapshot` as a tree of tasks (like 3.14's `python -m asyncio pstree`:
/// a task under the task that awaits it) or as the `dump --async --json` contract:
/// `{"pid", "python": {…}, "tasks": [{"id", "name", "state", "awaited_by": [id],
/// "frames": [{"name", "qualname", "file", "line"}]}]}`, frames innermost first.
public enum AsyncTreeWriter {
    public static func json(_ snapshot: AsyncSnapshot) -> String {
        DumpReport.document(pid: snapshot.pid, python: snapshot.python, listKey: "tasks", entries: snapshot.tasks) { task, json in
            json.field("id", task.id)
            json.field("name", task.name)
            json.field("state", task.state.rawValue)
            json.key("awaited_by")
            json.beginArray()
            for awaiter in task.awaitedBy { json.number(awaiter) }
            json.endArray()
            DumpReport.writeStack(task.frames, defect: task.defect, to: &json) { _, frame, json in
                DumpReport.writeLocation(frame, to: &json)
            }
        }
    }

    /// The tree: roots are tasks no task awaits (and, so that none is lost, the first task
    /// of an awaiting cycle); under each task its coroutine stack, innermost first, then
    /// the tasks it awaits. A task awaited by several appears under each of them; a task
    /// met again on its own path is printed as `(cycle)` and not descended into.
    public static func text(_ snapshot: AsyncSnapshot) -> String {
        func shown(_ text: String) -> String { text.escapingControlCharacters }
        var out = DumpReport.textHeader(pid: snapshot.pid, commandLine: snapshot.commandLine, python: snapshot.python)
        out += "\(snapshot.tasks.count) asyncio task\(snapshot.tasks.count == 1 ? "" : "s")\n"
        var byID = [UInt64: AsyncTask]()
        var awaits = [UInt64: [UInt64]]()
        for task in snapshot.tasks {
            byID[task.id] = task
            for awaiter in task.awaitedBy { awaits[awaiter, default: []].append(task.id) }
        }
        var printed = Set<UInt64>()
        func write(_ task: AsyncTask, prefix: String, last: Bool, path: Set<UInt64>) {
            out += prefix + (last ? "└── " : "├── ") + "(T) \(shown(task.name)) [\(task.state.rawValue)] 0x\(String(task.id, radix: 16))"
            if path.contains(task.id) {
                out += " (cycle)\n"
                return
            }
            out += "\n"
            printed.insert(task.id)
            let inner = prefix + (last ? "    " : "│   ")
            let children = (awaits[task.id] ?? []).compactMap { byID[$0] }
            let frameBar = children.isEmpty ? "    " : "│   "
            for frame in task.frames { out += inner + frameBar + shown(frame.label) + "\n" }
            if let defect = task.defect { out += inner + frameBar + "(partial: \(shown("\(defect)")))\n" }
            for (index, child) in children.enumerated() {
                write(child, prefix: inner, last: index == children.count - 1, path: path.union([task.id]))
            }
        }
        var roots = snapshot.tasks.filter { $0.awaitedBy.isEmpty }
        for (index, root) in roots.enumerated() { write(root, prefix: "", last: index == roots.count - 1, path: []) }
        // Tasks only reachable through a cycle of awaiting have no root: start from each.
        roots = snapshot.tasks.filter { !printed.contains($0.id) }
        for task in roots where !printed.contains(task.id) { write(task, prefix: "", last: true, path: []) }
        return out
    }
}
