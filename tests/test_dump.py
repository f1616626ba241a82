"""`pytap dump` against every interpreter of the matrix: its output must equal what the
interpreter reports about itself (sys._current_frames, threading, native ids)."""
import json
import os
import time

import pytest

from conftest import interpreter_params, run_pytap

FRAME_KEYS = ("name", "qualname", "file", "line")


def dump_json(pid, exclude_ident=None, timeout=10):
    """Dumps until the truth reporter thread has exited (it is not part of the truth)."""
    deadline = time.time() + timeout
    while True:
        result = run_pytap("dump", "--pid", pid, "--json")
        assert result.returncode == 0, result.stderr.decode()
        data = json.loads(result.stdout.decode("utf-8"))
        idents = [t["ident"] for t in data["threads"]]
        if exclude_ident not in idents or time.time() > deadline:
            return data
        time.sleep(0.05)


def process_and_threads_match(data, truth, pid):
    """Checks pid, version, files and the set of threads (live dumps and cores); returns
    the threads by ident: (pytap's, the truth's)."""
    assert data["pid"] == pid
    assert data["python"]["version"] == truth["version"]
    assert data["python"]["executable"] == truth["executable"]
    library = data["python"]["library"]
    assert (os.path.basename(library) if library else None) == truth["library"]
    got = dict((t["ident"], t) for t in data["threads"])
    want = dict((t["ident"], t) for t in truth["threads"])
    assert sorted(got) == sorted(want), "threads differ"
    return got, want


@pytest.mark.parametrize("interp", interpreter_params(debug=True))
def test_dump_equals_interpreter_truth(interp, workload):
    w = workload(interp, "dump_target.py")
    truth = w.truth()
    data = dump_json(w.pid, exclude_ident=truth["reporter_ident"])

    got, want = process_and_threads_match(data, truth, w.pid)
    for ident, expected in want.items():
        thread = got[ident]
        role = expected["role"]
        assert thread["tid"] == expected["tid"], role
        assert thread["name"] == expected["name"], role
        assert "partial" not in thread, (role, thread.get("partial"))
        frames = [dict((k, f[k]) for k in FRAME_KEYS) for f in thread["frames"]]
        assert frames == expected["frames"], "%s: frames differ" % role
        for frame in thread["frames"]:
            assert frame["kind"] == "python" and frame["module"] is None

    # The workload covers what the issue lists; make sure it really did on this version.
    roles = set(t["role"] for t in truth["threads"])
    assert {"main", "nested", "method", "lambda", "generator", "spinner", "deep", "far", "waiter", "unicode-file"} <= roles
    if interp.minor >= (3, 0):
        assert {"coroutine", "unicode-name"} <= roles
    deep = [t for t in truth["threads"] if t["role"] == "deep"][0]
    assert len(deep["frames"]) >= 200
    far = [t for t in truth["threads"] if t["role"] == "far"][0]
    assert far["frames"][1]["line"] > 255 + 120


@pytest.mark.parametrize("interp", interpreter_params(debug=True))
def test_dump_gil_and_idle(interp, workload):
    w = workload(interp, "dump_target.py")
    truth = w.truth()
    roles = dict((t["ident"], t["role"]) for t in truth["threads"])
    spinner_held_gil = False
    for _ in range(20):
        data = dump_json(w.pid, exclude_ident=truth["reporter_ident"])
        for thread in data["threads"]:
            role = roles.get(thread["ident"])
            if role == "spinner":
                assert thread["idle"] is False
                spinner_held_gil = spinner_held_gil or thread["gil"]
            elif role is not None:
                assert thread["idle"] is True, role
                assert thread["gil"] is False, role
        if spinner_held_gil:
            break
    assert spinner_held_gil, "the spinning thread never showed as holding the GIL"


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12", "pyenv-2.7"]))
def test_dump_text_output(interp, workload):
    w = workload(interp, "dump_target.py")
    truth = w.truth()
    result = run_pytap("dump", "-x", w.pid)
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode("utf-8")
    assert text.startswith("Process %d: " % w.pid)
    assert "Python v%s" % truth["version"] in text
    assert '"custom name \u2713 caf\u00e9"' in text
    far = [t for t in truth["threads"] if t["role"] == "far"][0]
    assert "far_lines (%s:%d)" % (far["frames"][1]["file"], far["frames"][1]["line"]) in text
