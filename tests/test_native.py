"""`pytap dump --native` against real interpreters: a workload spending its time in
zlib.compress called from compress_chunk must show compress_chunk rootward of zlib's
deflate frames, the stacks must reach the thread's start and never carry a mismatch
marker; and a pytap killed mid-dump must leave the target running."""
import json
import os
import random
import signal
import subprocess
import time

import pytest

from conftest import interpreter_params, pytap_path, run_pytap

THREE = ["pyenv-3.11", "debian-3.11-static", "sid-3.14"]
# Names of a thread's first frames, leading underscores removed (`__clone3`, `__libc_start_main_impl`).
THREAD_START = ("start", "libc_start_", "clone", "start_thread")
MISMATCH = "does not line up"


def native_dump(pid, *extra):
    result = run_pytap("dump", "--pid", pid, "--native", "--json", *extra)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout.decode("utf-8"))


def names(frames):
    return [f["name"] for f in frames]


def reaches_thread_start(frames):
    if not frames or frames[-1]["kind"] != "native":
        return False
    last = frames[-1]
    if last["name"].lstrip("_").startswith(THREAD_START):
        return True
    # The sid chroot has no libc6-dbg: its libc's start_thread and clone3 have no symbol,
    # and are named by their unwind entry's start (`libc.so.6+0x8b0a0`). Accept such libc
    # frames right under the interpreter's thread entry there.
    tail = frames[-3:]
    return (last["name"].startswith("libc.so") and "libc.so" in (last["module"] or "")
            and any(f["name"] == "pythread_wrapper" for f in tail))


def check_merged(frames):
    """No mismatch marker, no cut native stack, and the stack ends at the thread's start."""
    markers = [f["name"] for f in frames if f["kind"] == "marker"]
    assert not markers, (markers, names(frames))
    assert reaches_thread_start(frames), names(frames)


def deflate_under_compress_chunk(frames):
    """Whether zlib's deflate is on the stack with compress_chunk rootward of it."""
    deflate = [i for i, f in enumerate(frames) if f["kind"] == "native" and f["name"].startswith("deflate")]
    chunk = [i for i, f in enumerate(frames) if f["kind"] == "python" and f["name"] == "compress_chunk"]
    return bool(deflate) and bool(chunk) and min(chunk) > max(deflate)


@pytest.mark.parametrize("interp", interpreter_params(THREE))
def test_dump_native_shows_python_rootward_of_deflate(interp, workload):
    w = workload(interp, "native_zlib.py", 3)
    truth = w.truth()
    dumps = 8
    in_deflate = dict((tid, 0) for tid in truth["tids"])
    for _ in range(dumps):
        data = native_dump(w.pid)
        assert sorted(t["tid"] for t in data["threads"]) == truth["tids"]
        for thread in data["threads"]:
            frames = thread["frames"]
            check_merged(frames)
            for frame in frames:
                if frame["kind"] == "python":
                    assert frame["module"] is None and frame["file"] and frame["line"]
                else:
                    assert frame["module"], frame
            if deflate_under_compress_chunk(frames):
                in_deflate[thread["tid"]] += 1
            # The interpreter's own frames between Python frames are folded by --native.
            kinds = [f["kind"] for f in frames]
            first, last = kinds.index("python"), len(kinds) - 1 - kinds[::-1].index("python")
            between = [f for f in frames[first:last] if f["kind"] == "native"]
            assert not [f for f in between if f["name"].startswith("_PyEval_EvalFrame")], names(frames)
    # The workload spends nearly all its time compressing.
    for tid, count in in_deflate.items():
        assert count >= dumps // 2, (tid, in_deflate)


@pytest.mark.parametrize("interp", interpreter_params())
def test_dump_native_merges_without_mismatch(interp, workload):
    w = workload(interp, "native_zlib.py", 2)
    truth = w.truth()
    seen_deflate = False
    for _ in range(4):
        data = native_dump(w.pid)
        assert sorted(t["tid"] for t in data["threads"]) == truth["tids"]
        for thread in data["threads"]:
            check_merged(thread["frames"])
            python = [f["name"] for f in thread["frames"] if f["kind"] == "python"]
            assert "compress_chunk" in python or "main" in python or "worker_loop" in python, python
            seen_deflate = seen_deflate or deflate_under_compress_chunk(thread["frames"])
    assert seen_deflate


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.10"]))
def test_dump_native_all_keeps_interpreter_frames(interp, workload):
    w = workload(interp, "native_zlib.py", 1)
    w.truth()
    result = run_pytap("dump", "--pid", w.pid, "--native-all", "--json")
    assert result.returncode == 0, result.stderr.decode()
    frames = json.loads(result.stdout.decode("utf-8"))["threads"][0]["frames"]
    check_merged(frames)
    kinds = [f["kind"] for f in frames]
    first, last = kinds.index("python"), len(kinds) - 1 - kinds[::-1].index("python")
    # ≤3.10, Python → Python calls go through the interpreter's C functions: shown with --native-all.
    assert any(f["kind"] == "native" for f in frames[first:last]), names(frames)


def thread_states(pid):
    states = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                states[int(tid)] = f.read().rsplit(")", 1)[1].split()[0]
        except (IOError, OSError):
            pass
    return states


def progress(w):
    try:
        with open(w.truth_host + ".progress") as f:
            return int(f.read() or 0)
    except (IOError, OSError, ValueError):
        return 0


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11"]))
def test_sigkill_during_dump_native_leaves_target_running(interp, workload):
    w = workload(interp, "native_zlib.py", 10)
    w.truth()
    rng = random.Random(8)
    killed_while_attached = 0
    for _ in range(25):
        process = subprocess.Popen([pytap_path(), "dump", "--pid", str(w.pid), "--native"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.03))
        # Seen from /proc: a thread traced by pytap now.
        traced = [s for s in thread_states(w.pid).values() if s == "t"]
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_while_attached += bool(traced)
    time.sleep(0.2)
    states = thread_states(w.pid)
    assert "t" not in states.values() and "T" not in states.values(), states
    before = progress(w)
    deadline = time.time() + 10
    while progress(w) <= before and time.time() < deadline:
        time.sleep(0.1)
    assert progress(w) > before, "the target made no progress after pytap was killed"
    # Every thread still runs: another dump sees all ten compressing or about to.
    data = native_dump(w.pid)
    assert len(data["threads"]) == 10


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11"]))
def test_dump_core_native_unwinds_from_saved_registers(interp, workload, tmp_path):
    w = workload(interp, "native_zlib.py", 2)
    truth = w.truth()
    # A core is one instant: both threads can be between compress calls (allocating or
    # freeing the output buffer) in it, as CI once caught. Up to three cores, each checked.
    seen = []
    for attempt in range(3):
        prefix = str(tmp_path / ("core%d" % attempt))
        made = subprocess.run(["gcore", "-o", prefix, str(w.pid)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        assert made.returncode == 0, made.stdout.decode()
        result = run_pytap("dump", "--core", "%s.%d" % (prefix, w.pid), "--native", "--json")
        assert result.returncode == 0, result.stderr.decode()
        data = json.loads(result.stdout.decode("utf-8"))
        assert sorted(t["tid"] for t in data["threads"]) == truth["tids"]
        for thread in data["threads"]:
            check_merged(thread["frames"])
        seen.append([[f["name"] for f in t["frames"]] for t in data["threads"]])
        if any(deflate_under_compress_chunk(t["frames"]) for t in data["threads"]):
            return
    raise AssertionError("deflate under compress_chunk in none of 3 cores: %s" % seen)


def vdso_frame_under(frames, function):
    """Whether the stack has clock_gettime's vDSO frame, named, with `function` rootward of it."""
    vdso = [i for i, f in enumerate(frames) if f["name"] == "__vdso_clock_gettime" and f["module"] == "[vdso]"]
    caller = [i for i, f in enumerate(frames) if f["kind"] == "python" and f["name"] == function]
    return bool(vdso) and bool(caller) and min(caller) > max(vdso)


# time.time()/time.monotonic() spend their time in the vDSO, which has no file: pytap reads
# its image from the target (a live process's memory, a core's dumped segment), so the
# frame is named and the unwind goes on through it to the thread's start.
@pytest.mark.parametrize("interp", interpreter_params(THREE))
def test_dump_native_unwinds_through_the_vdso(interp, workload):
    w = workload(interp, "native_work.py", "clock", 30)
    function = w.truth()["function"]
    seen = []
    for _ in range(30):
        frames = native_dump(w.pid)["threads"][0]["frames"]
        check_merged(frames)
        if vdso_frame_under(frames, function):
            return
        seen.append(names(frames)[:4])
    raise AssertionError("__vdso_clock_gettime under %s in none of 30 dumps: %s" % (function, seen[:5]))


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11"]))
def test_dump_core_native_unwinds_through_the_vdso(interp, workload, tmp_path):
    w = workload(interp, "native_work.py", "clock", 60)
    function = w.truth()["function"]
    for attempt in range(8):
        prefix = str(tmp_path / ("core%d" % attempt))
        made = subprocess.run(["gcore", "-o", prefix, str(w.pid)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        assert made.returncode == 0, made.stdout.decode()
        result = run_pytap("dump", "--core", "%s.%d" % (prefix, w.pid), "--native", "--json")
        os.unlink("%s.%d" % (prefix, w.pid))
        assert result.returncode == 0, result.stderr.decode()
        frames = json.loads(result.stdout.decode("utf-8"))["threads"][0]["frames"]
        check_merged(frames)
        if vdso_frame_under(frames, function):
            return
    raise AssertionError("__vdso_clock_gettime under %s in none of 8 cores" % function)
