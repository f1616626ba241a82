/// Writes a `ProcessSnapshot` as text (like `py-spy dump`) or as the `dump --json` contract:
/// `{"pid", "python": {"version", "executable", "library"}, "threads": [{"tid", "ident",
/// "name", "gil", "idle", "frames": [{"kind", "name", "qualname", "file", "line", "module"}]}]}`,
/// frames innermost first. With `--locals` each frame also has `"locals": [{"name", "repr"}]`
/// in the code object's order (`repr` null when unbound; the list null when unreadable).
public enum DumpReport {
    public static func json(_ snapshot: ProcessSnapshot) -> String {
        document(pid: snapshot.pid, python: snapshot.python, listKey: "threads", entries: snapshot.threads) { thread, json in
            json.field("tid", thread.tid)
            json.field("ident", thread.ident)
            json.field("name", thread.name)
            json.field("gil", thread.holdsGIL)
            if let idle = thread.idle { json.field("idle", idle) } else { json.key("idle"); json.null() }
            writeStack(thread.frames, defect: thread.defect, to: &json) { index, frame, json in
                json.field("kind", frame.kind.rawValue)
                writeLocation(frame, to: &json)
                json.field("module", frame.module)
                if index < thread.locals.count { writeLocals(thread.locals[index], to: &json) }
            }
        }
    }

    /// A dump contract's document: `{"pid", "python": {…}, LIST_KEY: [{…}]}` and a newline;
    /// `writeEntry` writes the members of each entry's object.
    static func document<Entry>(pid: Int32, python: PythonInfo, listKey: String, entries: [Entry],
                                writeEntry: (Entry, inout JSONWriter) -> Void) -> String {
        var json = JSONWriter()
        json.beginObject()
        writeProcess(pid: pid, python: python, to: &json)
        json.key(listKey)
        json.beginArray()
        for entry in entries {
            json.beginObject()
            writeEntry(entry, &json)
            json.endObject()
        }
        json.endArray()
        json.endObject()
        return json.output + "\n"
    }

    /// `"partial"` when the stack is partial (complete ones are exactly the contract), then
    /// `"frames"`, innermost first; `writeFrame` writes the members of each frame's object.
    static func writeStack(_ frames: [Frame], defect: WalkDefect?, to json: inout JSONWriter,
                           writeFrame: (Int, Frame, inout JSONWriter) -> Void) {
        if let defect { json.field("partial", defect.description) }
        json.key("frames")
        json.beginArray()
        for (index, frame) in frames.enumerated() {
            json.beginObject()
            writeFrame(index, frame, &json)
            json.endObject()
        }
        json.endArray()
    }

    /// A frame's `"name"`, `"qualname"`, `"file"` and `"line"`.
    static func writeLocation(_ frame: Frame, to json: inout JSONWriter) {
        json.field("name", frame.name)
        json.field("qualname", frame.qualname)
        json.field("file", frame.file)
        json.field("line", frame.line)
    }

    /// `"pid": …, "python": {"version", "executable", "library"}`, shared by the dump contracts.
    static func writeProcess(pid: Int32, python: PythonInfo, to json: inout JSONWriter) {
        json.field("pid", pid)
        json.key("python")
        json.beginObject()
        json.field("version", python.version)
        json.field("executable", python.executable)
        json.field("library", python.library)
        json.endObject()
    }

    /// The `Process …` and `Python v…` lines every text dump starts with.
    static func textHeader(pid: Int32, commandLine: [String], python: PythonInfo) -> String {
        func shown(_ text: String) -> String { text.escapingControlCharacters }
        return "Process \(pid): \(shown(commandLine.joined(separator: " ")))\n"
            + "Python v\(shown(python.version)) (\(shown(python.library ?? python.executable)))\n"
    }

    private static func writeLocals(_ locals: [LocalVariable]?, to json: inout JSONWriter) {
        json.key("locals")
        guard let locals else { return json.null() }
        json.beginArray()
        for variable in locals {
            json.beginObject()
            json.field("name", variable.name)
            json.field("repr", variable.repr)
            json.endObject()
        }
        json.endArray()
    }

    /// Text lines of a frame's locals, indented under the frame.
    private static func localsText(_ locals: [LocalVariable]?) -> String {
        guard let locals else { return "        (locals unreadable)\n" }
        return locals.map { "        \($0.name) = \($0.repr ?? "<unbound>")".escapingControlCharacters + "\n" }.joined()
    }

    /// A frame's line in the text form: a native frame adds its source line, when known,
    /// and its object file's name.
    static func textLabel(_ frame: Frame) -> String {
        guard frame.kind == .native else { return frame.label }
        var text = frame.label
        if let file = frame.file { text += " (\(file)\(frame.line.map { ":\($0)" } ?? ""))" }
        return text + frame.moduleTag
    }

    /// The text form; names and paths from the target have their control characters escaped.
    public static func text(_ snapshot: ProcessSnapshot) -> String {
        func shown(_ text: String) -> String { text.escapingControlCharacters }
        var out = textHeader(pid: snapshot.pid, commandLine: snapshot.commandLine, python: snapshot.python)
        for thread in snapshot.threads {
            out += "\n"
            out += "Thread \(thread.tid.map(String.init) ?? "?") (0x\(String(thread.ident, radix: 16)))"
            var states = [String]()
            if thread.holdsGIL { states.append("gil") }
            states.append(thread.idle.map { $0 ? "idle" : "active" } ?? "unknown")
            out += " (" + states.joined(separator: ", ") + ")"
            if let name = thread.name { out += ": \"\(shown(name))\"" }
            out += "\n"
            for (index, frame) in thread.frames.enumerated() {
                out += "    \(shown(textLabel(frame)))\n"
                if index < thread.locals.count { out += localsText(thread.locals[index]) }
            }
            if thread.frames.isEmpty && thread.defect == nil { out += "    (no Python frames)\n" }
            if let defect = thread.defect { out += "    (partial stack: \(shown("\(defect)")))\n" }
        }
        return out
    }
}
