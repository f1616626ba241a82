"""`pytap callgraph` against real interpreters: uprobes on every C function of the
interpreter, traced inside `sorted()` (builtin_sorted), with balanced calls and returns,
the list sort inside each block, µs times that only grow and agree with the workload's own
timing; JSON and Chrome trace output; and a target that runs on unprobed after pytap ends,
normally or by SIGKILL."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import interpreter_params, pytap_path, run_pytap

CALLGRAPH_INTERPRETERS = ["pyenv-2.7", "pyenv-3.11", "pyenv-3.12", "debian-3.11-static", "sid-3.14"]
LINE = re.compile(r"^ *(\d+) (.+)\((\d+)\):( *) (->|<-) (\S+)$")


def base_name(name):
    """`list_sort.lto_priv.0` -> `list_sort`: compiler-made clones keep their source name first."""
    return name.split(".")[0]


def bpf_refused(result):
    text = result.stderr.decode()
    return "Operation not permitted" in text or "CAP_BPF" in text


def parse_blocks(text):
    """Blocks (separated by blank lines) of (µs, tid, depth, arrow, name)."""
    blocks = []
    for chunk in text.strip("\n").split("\n\n"):
        rows = []
        for line in chunk.split("\n"):
            match = LINE.match(line)
            assert match, "not a call-graph line: %r" % line
            rows.append((int(match.group(1)), int(match.group(3)), len(match.group(4)), match.group(5), match.group(6)))
        blocks.append(rows)
    return blocks


def check_block(rows, trigger):
    """Balanced ->/<- pairs, nested by depth, times that never go back; returns the
    names entered in order and the block's total µs."""
    stack = []
    entered = []
    last = 0
    for micros, _, depth, arrow, name in rows:
        assert micros >= last, "time went back at %s: %s" % (name, rows)
        last = micros
        if arrow == "->":
            assert depth == len(stack), "entry of %s at depth %d with %d open" % (name, depth, len(stack))
            stack.append(name)
            entered.append(name)
        else:
            assert stack and stack[-1] == name and depth == len(stack) - 1, "unbalanced return of %s (open: %s)" % (name, stack)
            stack.pop()
    assert not stack, "calls never returned: %s" % stack
    assert base_name(rows[0][4]) == trigger and base_name(rows[-1][4]) == trigger
    return entered, rows[-1][0]


def durations(w):
    with open(w.truth_host + ".durations") as f:
        return [tuple(float(x) for x in line.split()) for line in f if line.strip()]


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


@pytest.mark.parametrize("interp", interpreter_params(CALLGRAPH_INTERPRETERS))
def test_three_calls_of_sorted_each_with_the_list_sort_inside(workload, interp):
    w = workload(interp, "callgraph_target.py", 60)
    truth = w.truth()
    started = time.time()
    result = run_pytap("callgraph", "-x", truth["pid"], "-t", "builtin_sorted", "-n", 3, timeout=60)
    ended = time.time()
    if bpf_refused(result):
        pytest.skip("SKIPPED BPF not allowed here: " + result.stderr.decode().strip())
    assert result.returncode == 0, result.stderr.decode()
    summary = result.stderr.decode()
    assert re.search(r"probing \d{3,} functions of .* multi-uprobe links", summary), summary
    blocks = parse_blocks(result.stdout.decode())
    assert len(blocks) == 3, result.stdout.decode()
    # The workload's own timing of the sorted() calls made while pytap ran (probed).
    probed = [took * 1e6 for wall, took in durations(w) if started <= wall <= ended]
    sort_names = ("listsort",) if interp.minor < (3, 0) else ("list_sort_impl", "list_sort")
    for rows in blocks:
        assert len(set(tid for _, tid, _, _, _ in rows)) == 1
        entered, total = check_block(rows, "builtin_sorted")
        names = [base_name(n) for n in entered]
        # sorted() copies the list (PySequence_List, inlined into its caller by LTO in
        # Debian's build: its callee is seen), then sorts the copy.
        copies = [i for i, n in enumerate(names) if n in ("PySequence_List", "_PyList_Extend", "list_extend", "_list_extend", "listextend")]
        sorts = [i for i, n in enumerate(names) if n in sort_names]
        assert copies and sorts and copies[0] < sorts[0], names
        # Plausible: no longer than the slowest sorted() the workload timed meanwhile (its
        # timing encloses the C call), and not absurdly shorter than the fastest.
        assert probed, "the workload timed no sorted() call while pytap ran"
        assert total <= 2 * max(probed) and total >= min(probed) / 2, (total, min(probed), max(probed))


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12"]))
def test_json_and_chrome_trace(workload, interp, tmp_path):
    w = workload(interp, "callgraph_target.py", 60)
    pid = w.truth()["pid"]
    result = run_pytap("callgraph", "-x", pid, "-t", "builtin_sorted", "-n", 2, "--json", timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    invocations = json.loads(result.stdout.decode())
    assert [i["invocation"] for i in invocations] == [1, 2]

    def check(node, low, high):
        assert low <= node["start_us"] <= node["end_us"] <= high, (node["name"], low, high)
        for child in node["calls"]:
            check(child, node["start_us"], node["end_us"])
    for invocation in invocations:
        assert invocation["call"]["name"] == "builtin_sorted" and not invocation["truncated"]
        check(invocation["call"], 0, 1e9)

    trace = str(tmp_path / "trace.json")
    result = run_pytap("callgraph", "-x", pid, "-t", "builtin_sorted", "-n", 2, "-o", trace, "--functions", "*sort*", timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    with open(trace) as f:
        document = json.load(f)
    # Trace Event Format: complete events carry name, ph "X", ts and dur in µs, pid, tid.
    events = document["traceEvents"]
    assert events and all(e["ph"] == "X" and e["dur"] >= 0 and e["pid"] == pid for e in events)
    names = set(e["name"] for e in events)
    assert "builtin_sorted" in names and ("list_sort_impl" in names or "list_sort" in names), names
    assert all(fnmatch_sort(n) or n == "builtin_sorted" for n in names), names
    roots = [e for e in events if e["name"] == "builtin_sorted"]
    assert len(roots) == 2
    for e in events:
        assert any(r["ts"] <= e["ts"] and e["ts"] + e["dur"] <= r["ts"] + r["dur"] + 1e-3 for r in roots), e


def fnmatch_sort(name):
    return "sort" in name


def loop_speed(w, since, until):
    return [took for wall, took in durations(w) if since <= wall <= until]


def probe_until_killed(command, pid, trigger, clock):
    """Runs `pytap COMMAND` on a trigger that never runs (it waits with every probe on), for
    a second, then SIGKILLs it; returns when (on `clock`) the probes were on."""
    process = subprocess.Popen([pytap_path(), command, "-x", str(pid), "-t", trigger, "-n", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = process.stderr.readline().decode()
    assert "probing" in line, line + process.stderr.read().decode()
    probed_since = clock()
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return probed_since


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12", "debian-3.11-static"]))
@pytest.mark.parametrize("ending", ["normal", "sigkill"])
def test_target_runs_on_unprobed_after_pytap_ends(workload, interp, ending):
    w = workload(interp, "callgraph_target.py", 60)
    pid = w.truth()["pid"]
    time.sleep(1.0)
    before = time.time()
    if ending == "normal":
        result = run_pytap("callgraph", "-x", pid, "-t", "builtin_sorted", "-n", 2, timeout=60)
        assert result.returncode == 0, result.stderr.decode()
        probed_since = None
    else:
        probed_since = probe_until_killed("callgraph", pid, "PyErr_PrintEx", time.time)
    ended = time.time()
    time.sleep(1.0)
    baseline = median(loop_speed(w, before - 1.0, before))
    after = median(loop_speed(w, ended + 0.2, ended + 1.0))
    if probed_since is not None:
        # The probes were really on (so that their removal is what the next check sees).
        probed = median(loop_speed(w, probed_since + 0.1, ended - 0.1))
        assert probed > 3 * baseline, (baseline, probed)
    assert w.process.poll() is None, "the target died"
    assert after < 2 * baseline + 20e-6, "sorted() took %.1f µs before pytap, %.1f µs after" % (baseline * 1e6, after * 1e6)


def test_bad_trigger_is_a_one_line_error(workload):
    from conftest import require_interpreter
    interp = require_interpreter("pyenv-3.12")
    w = workload(interp, "callgraph_target.py", 30)
    pid = w.truth()["pid"]
    result = run_pytap("callgraph", "-x", pid, "-t", "no_such_function_anywhere", timeout=30)
    assert result.returncode == 1
    lines = result.stderr.decode().strip().split("\n")
    assert len(lines) == 1 and "no function no_such_function_anywhere" in lines[0], lines
    result = run_pytap("callgraph", "-x", pid, "-t", "builtin_sorted", "-d", "no_such_library", timeout=30)
    assert result.returncode == 1 and "maps no object file named no_such_library" in result.stderr.decode()


PY_LINE = re.compile(r"^ *(\d+) (.+)\((\d+)\):( *) (->|<-) (.+) \((.*):(\d+)\)$")
PY_CALLGRAPH_INTERPRETERS = ["pyenv-2.7", "pyenv-3.8", "pyenv-3.10", "pyenv-3.11", "pyenv-3.12", "pyenv-3.13",
                             "debian-3.11-static", "sid-3.13", "sid-3.14", "sid-3.15",
                             "debian-3.11d", "sid-3.13d", "sid-3.14d", "sid-3.15d"]


def py_blocks(text):
    """Blocks of (µs, tid, depth, arrow, qualname, file) rows; a truncated block's note is kept as None."""
    blocks = []
    for chunk in text.strip("\n").split("\n\n"):
        rows = []
        for line in chunk.split("\n"):
            if "ended before its return was seen" in line:
                rows.append(None)
                continue
            match = PY_LINE.match(line)
            assert match, "not a py-callgraph line: %r" % line
            rows.append((int(match.group(1)), int(match.group(3)), len(match.group(4)), match.group(5), match.group(6), match.group(7)))
        blocks.append(rows)
    return blocks


def check_py_block(rows, expected):
    """The block is the tree sys.setprofile reported (names by their last part), balanced and
    monotonic; returns its total µs."""
    assert None not in rows, "truncated block: %s" % rows
    check_block([row[:5] for row in rows], "trigger_root")
    assert all(row[5].endswith("pycallgraph_target.py") for row in rows)
    seen = [(arrow, name.split(".")[-1]) for _, _, _, arrow, name, _ in rows]
    assert seen == expected, "\n".join("%s %s" % pair for pair in seen)
    return rows[-1][0]


def workload_clock(interp):
    """The clock pycallgraph_target.py stamps its calls with."""
    return time.time if interp.minor < (3, 3) else time.monotonic


@pytest.mark.parametrize("interp", interpreter_params(PY_CALLGRAPH_INTERPRETERS, debug=True))
def test_py_callgraph_equals_the_tree_the_interpreter_reports(workload, interp):
    check_py_callgraph_tree(workload(interp, "pycallgraph_target.py", 60), interp)


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12", "pyenv-3.13", "sid-3.14", "sid-3.15"]))
def test_py_callgraph_counts_a_resume_run_twice_once(workload, interp):
    # Re-instrumenting before each call makes every function's RESUME run twice (3.12+).
    check_py_callgraph_tree(workload(interp, "pycallgraph_target.py", 60, "reinstrument"), interp)


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-2.7", "pyenv-3.10", "pyenv-3.12", "debian-3.11-static", "sid-3.14"]))
def test_py_callgraph_follows_the_trigger_on_another_thread(workload, interp):
    # The main thread's calls of leaf() meanwhile are recorded too, but stay out of the blocks.
    w = workload(interp, "pycallgraph_target.py", 60, "thread")
    tids = check_py_callgraph_tree(w, interp)
    assert tids == {w.truth()["worker_tid"]} and w.truth()["worker_tid"] != w.truth()["pid"], tids


def check_py_callgraph_tree(w, interp):
    """Two blocks of `py-callgraph -t trigger_root -n 2`, each the tree the workload
    reported, timed plausibly; returns the threads they ran on."""
    truth = w.truth()
    clock = workload_clock(interp)
    began = clock()
    result = run_pytap("py-callgraph", "-x", truth["pid"], "-t", "trigger_root", "-n", 2, timeout=60)
    ended = clock()
    if bpf_refused(result):
        pytest.skip("SKIPPED BPF not allowed here: " + result.stderr.decode().strip())
    assert result.returncode == 0, result.stderr.decode()
    blocks = py_blocks(result.stdout.decode())
    assert len(blocks) == 2, result.stdout.decode()
    # sys.setprofile's call/return events, by code name (a qualname's last part).
    expected = [(("->" if event == "call" else "<-"), name) for event, name in truth["calls"]]
    time.sleep(0.2)
    probed = [took * 1e6 for start, took in durations(w) if began <= start <= ended]
    assert probed, "the workload timed no trigger_root call while pytap ran"
    tids = set()
    for rows in blocks:
        total = check_py_block(rows, expected)
        assert len(set(row[1] for row in rows)) == 1
        tids.add(rows[0][1])
        # Plausible: within 2x of the workload's own timing of the calls made meanwhile.
        assert min(probed) / 2 <= total <= 2 * max(probed), (total, min(probed), max(probed))
    return tids


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12", "sid-3.14"]))
def test_py_callgraph_sees_a_thread_started_during_the_trace_at_once(workload, interp):
    # 3.11+ records a thread once pytap knows its thread state: a thread started meanwhile
    # must be known within its first 20 ms (the workload's threads call trigger_root 10
    # times after that), not at the next periodic refresh of the thread map.
    w = workload(interp, "pycallgraph_target.py", 60, "new-threads")
    truth = w.truth()
    process = subprocess.Popen([pytap_path(), "py-callgraph", "-x", str(truth["pid"]), "-t", "trigger_root", "-n", "100000",
                                "--duration", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = process.stderr.readline().decode()
    assert "probing" in line, line + process.stderr.read().decode()
    probed_since = time.monotonic()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    expected = [(("->" if event == "call" else "<-"), name) for event, name in truth["calls"]]
    traced = {}
    for rows in py_blocks(out.decode()):
        if None in rows:
            continue  # the last call, cut by the end of the trace
        check_py_block(rows, expected)
        traced[rows[0][1]] = traced.get(rows[0][1], 0) + 1
    time.sleep(0.2)
    calls = {}
    with open(w.truth_host + ".durations") as f:
        for began, _, tid in (line.split() for line in f if line.strip()):
            calls.setdefault(int(tid), []).append(float(began))
    # Threads whose calls all ran well inside the trace: each of their calls is one block.
    inside = [tid for tid, starts in calls.items() if starts[0] >= probed_since + 0.05 and starts[-1] <= probed_since + 3.7]
    assert len(inside) >= 5, (len(inside), calls)
    whole = [tid for tid in inside if traced.get(tid, 0) == len(calls[tid])]
    assert len(whole) >= 0.75 * len(inside), "%d of %d new threads traced from their first call: %s" % (
        len(whole), len(inside), [(tid, traced.get(tid, 0), len(calls[tid])) for tid in inside])


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-2.7", "pyenv-3.12", "sid-3.14"]))
def test_py_callgraph_without_trigger_traces_every_call_for_a_while(workload, interp):
    w = workload(interp, "pycallgraph_target.py", 60)
    truth = w.truth()
    started = time.time()
    result = run_pytap("py-callgraph", "-x", truth["pid"], "--duration", 1, timeout=60)
    took = time.time() - started
    if bpf_refused(result):
        pytest.skip("SKIPPED BPF not allowed here: " + result.stderr.decode().strip())
    assert result.returncode == 0, result.stderr.decode()
    assert took < 5, took
    blocks = py_blocks(result.stdout.decode())
    expected = [(("->" if event == "call" else "<-"), name) for event, name in truth["calls"]]
    # The main loop calls only trigger_root in Python (every 50 ms). The trace may begin
    # inside a call (the calls it still makes are blocks of their own, before the first
    # whole one) and end inside one (a truncated last block): every block from the first
    # of trigger_root on, but the last, is one whole call of it.
    roots = [rows[0][4] for rows in blocks]
    assert "trigger_root" in roots, roots
    whole = blocks[roots.index("trigger_root"):-1]
    assert len(whole) >= 12, result.stdout.decode()
    for rows in whole:
        check_py_block(rows, expected)


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12", "sid-3.15"]))
def test_py_callgraph_target_runs_on_unprobed_after_sigkill(workload, interp):
    w = workload(interp, "pycallgraph_target.py", 60)
    pid = w.truth()["pid"]
    time.sleep(1.0)
    probed_since = probe_until_killed("py-callgraph", pid, "never_called", time.monotonic)
    ended = time.monotonic()
    time.sleep(1.0)
    speed = lambda since, until: median([took for start, took in durations(w) if since <= start <= until])
    baseline = speed(probed_since - 1.0, probed_since - 0.1)
    probed = speed(probed_since + 0.1, ended - 0.1)
    after = speed(ended + 0.2, ended + 1.0)
    assert probed > 2 * baseline, (baseline, probed)
    assert w.process.poll() is None, "the target died"
    assert after < 1.5 * baseline + 20e-6, "trigger_root took %.1f µs before pytap, %.1f µs after" % (baseline * 1e6, after * 1e6)


def test_py_callgraph_needs_a_trigger_or_a_limit(workload):
    from conftest import require_interpreter
    interp = require_interpreter("pyenv-3.12")
    w = workload(interp, "pycallgraph_target.py", 30)
    result = run_pytap("py-callgraph", "-x", w.truth()["pid"], timeout=30)
    assert result.returncode != 0 and "without --trigger, give --duration or --count" in result.stderr.decode()
    result = run_pytap("py-callgraph", "-x", w.truth()["pid"], "--duration", "0", timeout=30)
    assert result.returncode != 0 and "--duration must be a positive number" in result.stderr.decode()


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12"]))
def test_module_option_probes_an_extension_module(workload, interp):
    w = workload(interp, "callgraph_target.py", 60)
    result = run_pytap("callgraph", "-x", w.truth()["pid"], "-t", "encoder_call", "-d", "_json", "-n", 2, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert re.search(r"probing \d+ functions of \S+/_json\.cpython-312-x86_64-linux-gnu\.so", result.stderr.decode())
    for rows in parse_blocks(result.stdout.decode()):
        entered, _ = check_block(rows, "encoder_call")
        # json.dumps(list of 3 ints) encodes the list, then each int.
        assert sum(1 for name in entered if base_name(name) == "encoder_listencode_obj") >= 1, entered
