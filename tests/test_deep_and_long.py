"""Stacks beyond pytap's caps keep what was read: a recursion deeper than the frame cap
keeps its innermost frames and a marker saying how many outer frames were cut; a name or
filename longer than its cap is cut and ends in an ellipsis."""
import json
import re

import pytest

from conftest import interpreter_params, run_pytap
from test_sample import parse_folded

MAXIMUM_DEPTH = 4096          # PythonReader.maximumDepth
NAME_CAP, FILE_CAP = 1024, 4096  # CodeObjectCache.maximumNameLength / maximumFilenameLength
CUT = re.compile(r"^\((over )?(\d+) outer frames? cut\)$")
# Frames in memory that are not Python frames (3.11+ entry/shim frames) may be counted as cut.
SLACK = 4


def cut_name(text, cap):
    return text[:cap] + "\u2026" if len(text) > cap else text


def by_role(truth):
    return dict((t["role"], t) for t in truth["threads"])


@pytest.mark.parametrize("interp", interpreter_params(debug=True))
def test_dump_keeps_deep_stacks_and_long_names(interp, workload):
    w = workload(interp, "deep_and_long.py")
    truth = w.truth()
    result = run_pytap("dump", "--pid", w.pid, "--json", timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    got = dict((t["ident"], t) for t in json.loads(result.stdout.decode("utf-8"))["threads"])
    roles = by_role(truth)

    deep = got[roles["deep"]["ident"]]
    expected = roles["deep"]["frames"]
    assert len(expected) > MAXIMUM_DEPTH
    assert "partial" not in deep, deep.get("partial")
    assert len(deep["frames"]) == MAXIMUM_DEPTH + 1
    kept = [(f["name"], f["file"], f["line"]) for f in deep["frames"][:-1]]
    assert kept == [(f["name"], f["file"], f["line"]) for f in expected[:MAXIMUM_DEPTH]]
    marker = deep["frames"][-1]
    assert marker["kind"] == "marker"
    match = CUT.match(marker["name"])
    assert match and not match.group(1), marker["name"]
    assert len(expected) - MAXIMUM_DEPTH <= int(match.group(2)) <= len(expected) - MAXIMUM_DEPTH + SLACK, marker["name"]

    long_name = got[roles["long-name"]["ident"]]
    assert "partial" not in long_name
    assert long_name["frames"][0]["name"] == cut_name(truth["long_name"], NAME_CAP)
    assert [f["line"] for f in long_name["frames"]] == [f["line"] for f in roles["long-name"]["frames"]]

    long_file = got[roles["long-file"]["ident"]]
    assert "partial" not in long_file
    assert long_file["frames"][0]["file"] == cut_name(truth["long_file"], FILE_CAP)
    assert long_file["frames"][0]["name"] == "in_long_file"


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-2.7", "pyenv-3.8", "pyenv-3.12", "sid-3.14", "debian-3.11d"], debug=True))
def test_sample_keeps_deep_stacks_and_long_names(interp, workload):
    w = workload(interp, "deep_and_long.py")
    truth = w.truth()
    result = run_pytap("sample", "--pid", w.pid, "--idle", "--duration", 1, "--rate", 20, "-f", "folded", timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    summary = result.stderr.decode()
    assert "try --idle" not in summary, summary
    rows = parse_folded(result.stdout.decode("utf-8"))
    leaves = dict((frames[-1].split(" (")[0], (frames, count)) for frames, count in rows)
    assert cut_name(truth["long_name"], NAME_CAP) in leaves, sorted(leaves)[:5]
    assert "in_long_file" in leaves
    assert cut_name(truth["long_file"], FILE_CAP) in leaves["in_long_file"][0][-1]
    deep = [frames for frames, _ in rows if frames[-1].startswith("recurse ")]
    assert deep, summary
    for frames in deep:
        assert CUT.match(frames[0]), frames[0]
        assert len(frames) == MAXIMUM_DEPTH + 1
