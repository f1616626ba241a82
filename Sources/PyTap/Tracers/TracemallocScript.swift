/// The Python that `memtrace --via tracemalloc` runs inside its target, one step at a time
/// (start, snapshot, finish): written by pytap into the session's directory under the
/// target's root and compiled there under that file's name, so the traces of its own
/// allocations can be told apart and left out. It uses only built-in modules
/// (`_tracemalloc`, `time`, `os`), keeps its state on `_tracemalloc` between steps, and answers in `STEP.out`: tab-separated
/// lines, `\`, tab and newline escaped.
enum TracemallocScript {
    static let fileName = "pytap_tracemalloc.py"

    static let library = #"""
# pytap memtrace --via tracemalloc: one step of a trace, run in this process through
# CPython's remote-debugging protocol (the mechanism of sys.remote_exec). pytap wrote
# this file and removes it with its directory when the trace ends.
STEP_LINES = 6


def _pytap_step(directory, step, action, options):
    import os
    if getattr(getattr(os, "__spec__", None), "_initializing", False) or not hasattr(os, "rename"):
        return  # os is still being imported (the interpreter is starting): pytap asks again
    try:
        os.close(os.open(os.path.join(directory, step + ".claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError:
        return  # another thread ran this step already
    import _tracemalloc, time
    lines = []

    def escape(text):
        return str(text).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    def snapshot():
        # (frames, size) -> blocks; frames are (file, line) pairs, innermost first. What
        # pytap's own steps allocate carries their file name and is left out, and so is
        # what the step's first lines (run by CPython as "<string>") hold while it runs.
        # One dictionary lookup per trace (tracebacks are shared tuples); the filter runs
        # once per traceback.
        by_frames = {}
        for _domain, size, frames, _total in _tracemalloc._get_traces():
            sizes = by_frames.get(frames)
            if sizes is None:
                sizes = by_frames[frames] = {}
            sizes[size] = sizes.get(size, 0) + 1
        counts = {}
        for frames, sizes in by_frames.items():
            if any(f[0].startswith(directory) for f in frames):
                continue
            if frames and frames[0][0] == "<string>" and frames[0][1] <= STEP_LINES:
                continue
            for size, n in sizes.items():
                counts[(frames, size)] = n
        return counts

    # The session's state stays in this process between steps, on the _tracemalloc module
    # (held by pytap's code, so its own traces are left out): the counts of the first and
    # the last snapshot, and per snapshot its time and the counts that changed. Changes
    # rather than whole snapshots: what holds still costs nothing per snapshot.
    sessions = getattr(_tracemalloc, "_pytap_sessions", None)
    if sessions is None:
        sessions = _tracemalloc._pytap_sessions = {}

    def record(state, counts, moment):
        last = state["last"]
        changed = {key: n for key, n in counts.items() if last.get(key) != n}
        changed.update((key, 0) for key in last if key not in counts)
        state["changes"].append((moment, changed))
        state["last"] = counts

    def names(files):
        # tracemalloc keeps file and line only: the function around a line is found in the
        # file's syntax tree (def, class and lambda scopes), as co_qualname would name it.
        scopes = {}
        for file in files:
            found = []
            try:
                with open(file, "rb") as source:
                    tree = compile(source.read(), file, "exec", 0x400)  # PyCF_ONLY_AST
            except BaseException:
                scopes[file] = None
                continue
            def visit(node, prefix, depth):
                if depth > 200:
                    return
                kind = type(node).__name__
                inner = prefix
                if kind in ("FunctionDef", "AsyncFunctionDef", "ClassDef", "Lambda"):
                    name = "<lambda>" if kind == "Lambda" else node.name
                    qualname = prefix + name
                    found.append((node.lineno, node.end_lineno or node.lineno, name, qualname))
                    inner = qualname + (".<locals>." if kind != "ClassDef" else ".")
                for field in node._fields:
                    value = getattr(node, field, None)
                    if isinstance(value, list):
                        for item in value:
                            if hasattr(item, "_fields"):
                                visit(item, inner, depth + 1)
                    elif hasattr(value, "_fields"):
                        visit(value, inner, depth + 1)
            visit(tree, "", 0)
            scopes[file] = found
        def name_of(file, line):
            found = scopes.get(file)
            if found is None:
                return "?", "?"
            best = None
            for first, last, name, qualname in found:
                if first <= line <= last and (best is None or first >= best[0]):
                    best = (first, name, qualname)
            return (best[1], best[2]) if best else ("<module>", "<module>")
        return name_of

    try:
        if action == "start":
            import atexit
            for stale in sessions.values():  # what a killed pytap left
                atexit.unregister(stale["hook"])
            sessions.clear()
            was_tracing = _tracemalloc.is_tracing() and not options["started_by_stale_pytap"]
            if not _tracemalloc.is_tracing():
                _tracemalloc.start(options["frames"])
            moment = time.monotonic()
            counts = snapshot()

            def at_exit():
                # The process ends while traced: the trace ends here, answered in exit.out
                # (quietly nothing when pytap's directory is gone).
                try:
                    _pytap_step(directory, "exit", "finish", {"was_tracing": was_tracing, "min_age": options["min_age"]})
                except BaseException:
                    pass

            atexit.register(at_exit)
            sessions[directory] = {"start": moment, "base": counts, "last": counts, "changes": [(moment, {})],
                                   "hook": at_exit}
            lines.append("started\t%d\t%d\t%r" % (was_tracing, _tracemalloc.get_traceback_limit(), moment))
        elif directory not in sessions:
            # The process is exiting and the exit hook ended the trace (its answer is in
            # exit.out, or soon: this step may run inside the hook's own code).
            lines.append("ended")
        elif action == "snapshot":
            began = time.monotonic()
            counts = snapshot()
            record(sessions[directory], counts, began)
            lines.append("snapshot\t%r\t%d\t%r" % (began, len(counts), time.monotonic() - began))
        elif action == "finish":
            state = sessions.pop(directory)
            if not sessions:
                del _tracemalloc._pytap_sessions
            import atexit
            atexit.unregister(state["hook"])
            end = time.monotonic()
            record(state, snapshot(), end)
            stopped = 0
            if not options["was_tracing"] and _tracemalloc.is_tracing():
                _tracemalloc.stop()
                stopped = 1
            start, base, changes = state["start"], state["base"], state["changes"]
            # Survivors must be present in every snapshot from the one taken at least
            # min_age before the end (without it: only the last), less those present at
            # the first.
            window = len(changes) - 1
            if options["min_age"] is not None:
                window = max([i for i, (moment, _) in enumerate(changes) if moment <= end - options["min_age"]] or [0])
            final = state["last"]
            low = {key: n for key, n in final.items() if n > base.get(key, 0)}
            counts = dict(base)
            for i, (moment, changed) in enumerate(changes):
                counts.update(changed)
                if i == window:
                    low = {key: min(n, counts.get(key, 0)) for key, n in low.items()}
                elif i > window:
                    for key in changed:
                        if key in low:
                            low[key] = min(low[key], counts[key])
            alive = {}
            for key, n in low.items():
                n -= base.get(key, 0)
                if n > 0:
                    alive[key] = [n, None, None]  # blocks, first and last snapshot seen
            # A block is dated by the first snapshot that held it (it was allocated after
            # the snapshot before).
            counts = dict(base)
            for moment, changed in changes:
                counts.update(changed)
                for key in changed:
                    entry = alive.get(key)
                    if entry is None:
                        continue
                    grown = counts[key] - base.get(key, 0)
                    if grown > 0 and entry[1] is None:
                        entry[1] = moment
                    if grown >= entry[0] and entry[2] is None:
                        entry[2] = moment
            groups = {}
            for (frames, size), (n, first, last) in alive.items():
                group = groups.setdefault(frames, [0, 0, first, last])
                group[0] += n
                group[1] += n * size
                group[2] = min(group[2], first)
                group[3] = max(group[3], last)
            name_of = names({f[0] for frames in groups for f in frames})
            lines.append("finished\t%r\t%d" % (end - start, stopped))
            for frames, (n, size, first, last) in groups.items():
                lines.append("group\t%d\t%d\t%r\t%r" % (n, size, (first - start) * 1000, (last - start) * 1000))
                for file, line in frames:
                    name, qualname = name_of(file, line)
                    lines.append("frame\t%s\t%d\t%s\t%s" % (escape(file), line, escape(name), escape(qualname)))
    except BaseException as error:
        lines = ["error\t" + escape("%s: %s" % (type(error).__name__, error))]
        if action == "finish" and not options["was_tracing"] and _tracemalloc.is_tracing():
            _tracemalloc.stop()  # whatever failed, the target is left as it was
    temporary = os.path.join(directory, step + ".tmp")
    with open(temporary, "w", encoding="utf-8", errors="backslashreplace") as out:
        out.write("\n".join(lines) + "\n")
    os.rename(temporary, os.path.join(directory, step + ".out"))
"""#

    /// The file the protocol hands to the target: compiles the library under its own path
    /// and runs one step. `options` is a Python literal. Its lines are `STEP_LINES`.
    static func step(directory: String, name: String, action: String, options: String) -> String {
        let library = directory + "/" + fileName
        return """
            _pytap = {"__name__": "pytap_tracemalloc"}
            _pytap_builtins = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)
            if "open" in _pytap_builtins:  # not yet while the interpreter starts: pytap asks again
                with open(\(pythonString(library)), "rb") as _source:
                    exec(compile(_source.read(), \(pythonString(library)), "exec"), _pytap)
                _pytap["_pytap_step"](\(pythonString(directory)), \(pythonString(name)), \(pythonString(action)), \(options))

            """
    }

    /// A Python string literal of `text` (ASCII escapes only).
    static func pythonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case " "..."~": out.unicodeScalars.append(scalar)
            default:
                let hex = String(scalar.value, radix: 16)
                out += "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
            }
        }
        return out + "\""
    }
}
