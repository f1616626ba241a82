"""Where the interpreter itself spends time, against real interpreters: the `<GC>` frame on
top of the thread running the cyclic garbage collector (sample, dump, `--no-gc`), and
`--mode exception`, which keeps only samples of threads handling or raising an exception.
The workload (workloads/gc_and_exceptions.py) measures its own time in gc.collect() and
reports what sys.exc_info() says in each function."""
import json
import time

import pytest

from conftest import interpreter_params, run_pytap
from test_sample import parse_folded, python_frame, wait_for_file

GC = "<GC>"


def sample(pid, seconds, *extra):
    result = run_pytap("sample", "--pid", pid, "--duration", seconds, "--rate", 500, *extra, timeout=seconds + 60)
    assert result.returncode == 0, result.stderr.decode()
    return parse_folded(result.stdout.decode("utf-8")), result.stderr.decode()


def functions_in(frames, truth):
    """Qualnames of the workload's functions on a stack (frames root first)."""
    names = set()
    for label in frames:
        parsed = python_frame(label)
        if parsed and parsed[1] == truth["functions"]["main"]["file"]:
            names.add(parsed[0])
    return names


def start(workload, interp, mode, seconds):
    w = workload(interp, "gc_and_exceptions.py", mode, seconds)
    truth = w.truth()
    time.sleep(0.3)  # past the interpreter's start
    return w, truth


@pytest.mark.parametrize("interp", interpreter_params())
def test_gc_frames_while_collections_run(interp, workload):
    w, truth = start(workload, interp, "gc", 5)
    rows, summary = sample(w.pid, 2.5)
    spent = wait_for_file(w.truth_host + ".done", w.process, timeout=60)["spent"]
    in_gc = building = elsewhere = 0
    for frames, count in rows:
        names = functions_in(frames, truth)
        # Only ever the innermost frame, above the function that called gc.collect().
        assert GC not in frames[:-1], frames
        if frames[-1] == GC:
            in_gc += count
            if python_frame(frames[-2])[0] != "collect_cycles":
                elsewhere += count
                print("<GC> not above collect_cycles: %s" % frames)
        elif "make_cycles" in names or "collect_cycles" in names:
            building += count
    measured = in_gc / float(in_gc + building)
    share = spent["collect_cycles"] / (spent["collect_cycles"] + spent["make_cycles"])
    print("%s: <GC> in %.1f%% of samples (%d elsewhere), gc.collect() %.1f%% of thread CPU (%d samples)\n%s" % (
        interp, 100 * measured, elsewhere, 100 * share, in_gc + building, summary))
    assert in_gc + building > 50, summary
    assert abs(measured - share) <= 0.15
    # A stack read in the middle of a collection is the collecting one (the flag is read
    # before the thread state is copied and after the walk; a reader preempted for a whole
    # collection and the code between two of them could still mislabel one).
    assert elsewhere <= 0.02 * in_gc


@pytest.mark.parametrize("interp", interpreter_params())
def test_no_gc_frames_without_collections(interp, workload):
    w, truth = start(workload, interp, "nogc", 30)
    rows, summary = sample(w.pid, 1.5)
    total = sum(count for frames, count in rows if "make_cycles" in functions_in(frames, truth))
    assert total > 50, summary
    assert not [frames for frames, _ in rows if GC in frames]


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-2.7", "pyenv-3.12", "sid-3.15"]))
def test_no_gc_option_drops_the_frame(interp, workload):
    w, truth = start(workload, interp, "gc", 30)
    rows, summary = sample(w.pid, 1.5, "--no-gc")
    collecting = sum(count for frames, count in rows if python_frame(frames[-1])[0] == "collect_cycles")
    assert collecting > 20, summary  # the collections ran: their samples end in collect_cycles
    assert not [frames for frames, _ in rows if GC in frames]


@pytest.mark.parametrize("interp", interpreter_params())
def test_dump_shows_gc_on_top_of_the_collecting_thread(interp, workload):
    w, truth = start(workload, interp, "gc", 30)
    seen = None
    deadline = time.time() + 20
    dumps = 0
    while seen is None and time.time() < deadline:
        result = run_pytap("dump", "--pid", w.pid, "--json")
        assert result.returncode == 0, result.stderr.decode()
        dumps += 1
        for thread in json.loads(result.stdout.decode("utf-8"))["threads"]:
            frames = thread["frames"]
            for frame in frames[1:]:
                assert frame["name"] != GC, frames
            if frames and frames[0]["name"] == GC:
                seen = frames
    assert seen is not None, "no <GC> frame in %d dumps" % dumps
    assert seen[0]["kind"] == "marker"
    assert seen[1]["qualname"] == "collect_cycles", seen


@pytest.mark.parametrize("interp", interpreter_params())
def test_exception_mode_keeps_only_the_handler(interp, workload):
    w, truth = start(workload, interp, "exceptions", 60)
    # The workload's own view: sys.exc_info() holds an exception in handle_error only.
    assert truth["handled"] == {"handle_error": True, "normal_work": False}
    exceptions, summary = sample(w.pid, 2.5, "--mode", "exception")
    everything, _ = sample(w.pid, 1.5, "--mode", "cpu")

    def split(rows):
        counts = {"handle_error": 0, "normal_work": 0, "other": 0}
        for frames, count in rows:
            names = functions_in(frames, truth)
            key = "handle_error" if "handle_error" in names else "normal_work" if "normal_work" in names else "other"
            counts[key] += count
        return counts

    only, both = split(exceptions), split(everything)
    print("%s: --mode exception %s, --mode cpu %s\n%s" % (interp, only, both, summary))
    # Without the mode both halves show (the timing between them is "other").
    assert min(both["handle_error"], both["normal_work"]) > 0.25 * (both["handle_error"] + both["normal_work"])
    assert only["handle_error"] > 50, summary
    assert only["normal_work"] == 0
    # A stack read from the thread-state copy may lag the exception checks by the time
    # between them: the caller about to enter the handler, rarely.
    assert only["other"] <= max(3, 0.03 * only["handle_error"])


def test_mode_cpu_and_idle_contradict():
    result = run_pytap("sample", "--pid", 1, "--mode", "cpu", "--idle")
    assert result.returncode != 0
    assert "--mode cpu" in result.stderr.decode()
    result = run_pytap("sample", "--pid", 1, "--mode", "bogus")
    assert result.returncode != 0


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12"]))
def test_top_ranks_the_collector(interp, workload):
    w, truth = start(workload, interp, "gc", 30)
    result = run_pytap("top", "--pid", w.pid, "--once", "--interval", 2)
    assert result.returncode == 0, result.stderr.decode()
    rows = [line.split() for line in result.stdout.decode("utf-8").splitlines()]
    gc_rows = [row for row in rows if row and row[-1] == GC]
    assert gc_rows, result.stdout.decode("utf-8")
    assert float(gc_rows[0][0].rstrip("%")) > 10  # own share: gc.collect() is about half of the CPU
    result = run_pytap("top", "--pid", w.pid, "--once", "--interval", 1, "--no-gc")
    assert GC not in result.stdout.decode("utf-8")
