"""`pytap dump --locals` against every interpreter of the matrix: each frame's arguments
and local variables must equal what the frame itself reported (f_locals, cells and free
variables included; unbound ones as null)."""
import json

import pytest

from conftest import interpreter_params, run_pytap


def parked_thread(data):
    threads = [t for t in data["threads"] if t["name"] == "locals"]
    assert len(threads) == 1, [t["name"] for t in data["threads"]]
    return threads[0]


@pytest.mark.parametrize("interp", interpreter_params())
def test_dump_locals_equal_the_frames_own(interp, workload):
    w = workload(interp, "locals_target.py")
    truth = w.truth()
    result = run_pytap("dump", "--pid", w.pid, "--json", "--locals")
    assert result.returncode == 0, result.stderr.decode()
    frames = parked_thread(json.loads(result.stdout.decode("utf-8")))["frames"]
    by_name = dict((f["name"], f) for f in frames)
    for expected in truth["frames"]:
        frame = by_name[expected["function"]]
        assert frame["locals"] == expected["locals"], expected["function"]
    # Frames below the parked ones carry locals too (possibly empty), never a missing key.
    assert all("locals" in f for f in frames)
    # The workload really covered cells, free and unbound variables on this version.
    inner = dict((v["name"], v["repr"]) for v in truth["frames"][0]["locals"])
    outer = dict((v["name"], v["repr"]) for v in truth["frames"][1]["locals"])
    assert inner["not_yet"] is None and inner["captured"] == "<dict of 1>"
    assert outer["deleted"] is None and outer["cell_argument"] == "<list of 2>"
    assert outer["late_cell"] is None and "late_cell" in [v["name"] for v in truth["frames"][1]["locals"]]
    assert outer["huge"].startswith("<int of ") and outer["long_text"].endswith("...")


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12", "pyenv-2.7"]))
def test_dump_locals_text(interp, workload):
    w = workload(interp, "locals_target.py")
    w.truth()
    result = run_pytap("dump", "--pid", w.pid, "--locals")
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode("utf-8")
    assert "        not_yet = <unbound>\n" in out
    assert "        number = 42\n" in out
    assert "        big = 1267650600228229401496703205376%s\n" % ("L" if interp.minor < (3, 0) else "") in out


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12"]))
def test_dump_without_locals_has_no_locals_key(interp, workload):
    w = workload(interp, "locals_target.py")
    w.truth()
    result = run_pytap("dump", "--pid", w.pid, "--json")
    assert result.returncode == 0, result.stderr.decode()
    for thread in json.loads(result.stdout.decode("utf-8"))["threads"]:
        for frame in thread["frames"]:
            assert "locals" not in frame
