"""`pytap sample` against real interpreters: the CPU split a workload measures itself,
frames that name real functions, files and lines, and each sampling mode."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import interpreters
from conftest import interpreter_params, pytap_path, run_pytap, require_interpreter, skip_or_fail

LABEL = re.compile(r"^(?P<qualname>.+) \((?P<file>.+?)(?::(?P<line>\d+))?\)$")


def parse_folded(text):
    """[(frames root first, count)] from folded output."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        rows.append((stack.split(";"), int(count)))
    return rows


def python_frame(label):
    m = LABEL.match(label)
    if not m:
        return None
    return m.group("qualname"), m.group("file"), int(m.group("line")) if m.group("line") else None


def wait_for_file(path, process, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        if process.poll() is not None:
            raise AssertionError("workload exited (%s) before writing %s" % (process.returncode, path))
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % path)


def split_of(rows, truth):
    """Samples whose stack passes through work_a / work_b (by qualname and file)."""
    counts = {"work_a": 0, "work_b": 0, "other": 0}
    for frames, count in rows:
        names = set()
        for label in frames:
            parsed = python_frame(label)
            if parsed and parsed[1] == truth["work_a"]["file"]:
                names.add(parsed[0])
        if "work_a" in names:
            counts["work_a"] += count
        elif "work_b" in names:
            counts["work_b"] += count
        else:
            counts["other"] += count
    return counts


def check_frames_are_real(rows, truth):
    """Every frame from the workload's file names one of its functions, at one of its lines."""
    functions = dict((f["qualname"], f) for f in truth["functions"])
    checked = 0
    for frames, _ in rows:
        for index, label in enumerate(frames):
            if label == "<GC>" and index == len(frames) - 1:
                continue  # the collector ran during that sample (on by default; --no-gc drops it)
            parsed = python_frame(label)
            assert parsed, "not a Python frame label: %r" % label
            qualname, path, line = parsed
            if path != truth["work_a"]["file"]:
                continue
            if qualname == "<module>":
                continue
            assert qualname in functions, label
            allowed = set(functions[qualname]["lines"]) | {functions[qualname]["first_line"]}
            assert line in allowed, "%s: line %s not in %s" % (label, line, sorted(allowed))
            checked += 1
    assert checked > 0


def record_cpu_split(interp, workload_dir, seconds, rate, share_a=0.3, extra=()):
    own_dir, host_dir = workload_dir
    truth_own = os.path.join(own_dir, "split.json")
    truth_host = os.path.join(host_dir, "split.json")
    process = interp.popen(os.path.join(own_dir, "cpu_split.py"), truth_own, seconds + 3, share_a)
    try:
        time.sleep(1.0)  # interpreter start and calibration
        result = run_pytap("sample", "--pid", process.pid, "--duration", seconds, "--rate", rate, *extra,
                           timeout=seconds + 60)
        assert result.returncode == 0, result.stderr.decode()
        truth = wait_for_file(truth_host, process, timeout=seconds + 60)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    return parse_folded(result.stdout.decode("utf-8")), truth, result.stderr.decode()


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-2.7", "pyenv-3.11", "sid-3.14"]))
def test_cpu_split_within_one_point_at_1000hz(interp):
    rows, truth, summary = record_cpu_split(interp, interp.stage(), seconds=20, rate=1000)
    counts = split_of(rows, truth)
    measured = counts["work_a"] / float(counts["work_a"] + counts["work_b"])
    print("%s: pytap %.2f%% vs thread_time %.2f%% (%d/%d samples, %d elsewhere)\n%s" % (
        interp, 100 * measured, 100 * truth["share_a"], counts["work_a"], counts["work_b"], counts["other"], summary))
    assert counts["work_a"] + counts["work_b"] > 15000
    assert abs(measured - truth["share_a"]) <= 0.01
    check_frames_are_real(rows, truth)


@pytest.mark.parametrize("interp", interpreter_params(debug=True))
def test_folded_profile_names_real_functions(interp):
    rows, truth, summary = record_cpu_split(interp, interp.stage(), seconds=2, rate=1000)
    counts = split_of(rows, truth)
    total = counts["work_a"] + counts["work_b"]
    assert total > 1000, summary
    assert abs(counts["work_a"] / float(total) - truth["share_a"]) < 0.05
    check_frames_are_real(rows, truth)
    # Roots are the module frame of the script (nothing is invented below it).
    for frames, _ in rows:
        assert python_frame(frames[0])[0] == "<module>", frames[0]


def stage_default():
    interp = require_interpreter("pyenv-3.12")
    return interp


def test_launch_mode_profiles_the_command_until_it_exits():
    interp = stage_default()
    own_dir, host_dir = interp.stage()
    out = os.path.join(host_dir, "launch.folded")
    result = run_pytap("sample", "--rate", 500, "-o", out, "--", interp.path,
                       os.path.join(own_dir, "cpu_split.py"), os.path.join(own_dir, "t.json"), 2, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert "the target exited" in result.stderr.decode()
    with open(out) as f:
        rows = parse_folded(f.read())
    truth = json.load(open(os.path.join(host_dir, "t.json")))
    counts = split_of(rows, truth)
    assert counts["work_a"] > 100 and counts["work_b"] > 100
    check_frames_are_real(rows, truth)


def test_launch_mode_through_a_wrapper_script():
    interp = stage_default()
    own_dir, host_dir = interp.stage()
    wrapper = os.path.join(host_dir, "wrapper.sh")
    with open(wrapper, "w") as f:
        # Not exec: python runs as a child of the shell, which pytap must find.
        f.write("#!/bin/sh\n%s %s \"$@\"\nexit $?\n" % (interp.path, os.path.join(own_dir, "cpu_split.py")))
    os.chmod(wrapper, 0o755)
    result = run_pytap("sample", "--rate", 500, "--", wrapper, os.path.join(own_dir, "t.json"), 2, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    counts = split_of(parse_folded(result.stdout.decode()), json.load(open(os.path.join(host_dir, "t.json"))))
    assert counts["work_a"] > 100 and counts["work_b"] > 100


def test_launch_mode_through_a_pyenv_shim():
    interp = stage_default()
    shim = "/root/.pyenv/shims/python3.12"
    if not os.path.exists(shim):
        skip_or_fail("no pyenv shim at %s" % shim)
    own_dir, host_dir = interp.stage()
    env = dict(os.environ, PYENV_VERSION="3.12.1")
    result = run_pytap("sample", "--rate", 500, "--", shim, os.path.join(own_dir, "cpu_split.py"),
                       os.path.join(own_dir, "t.json"), 2, timeout=60, env=env)
    assert result.returncode == 0, result.stderr.decode()
    counts = split_of(parse_folded(result.stdout.decode()), json.load(open(os.path.join(host_dir, "t.json"))))
    assert counts["work_a"] > 100 and counts["work_b"] > 100


def test_launch_of_something_that_never_becomes_python():
    result = run_pytap("sample", "--", "/bin/sh", "-c", "exit 3", timeout=60)
    assert result.returncode == 4
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "before a Python interpreter started" in lines[0], lines


def start_threads_mix(interp):
    own_dir, host_dir = interp.stage()
    process = interp.popen(os.path.join(own_dir, "threads_mix.py"), os.path.join(own_dir, "mix.json"))
    wait_for_file(os.path.join(host_dir, "mix.json"), process)
    return process


def functions_in(rows):
    names = {}
    for frames, count in rows:
        for label in frames:
            parsed = python_frame(label)
            if parsed:
                names[parsed[0]] = names.get(parsed[0], 0) + count
    return names


def test_idle_threads_only_with_idle_flag():
    interp = stage_default()
    process = start_threads_mix(interp)
    try:
        busy = functions_in(parse_folded(run_pytap("sample", "-x", process.pid, "-t", 2, "-r", 200).stdout.decode()))
        idle = functions_in(parse_folded(run_pytap("sample", "-x", process.pid, "-t", 2, "-r", 200, "--idle").stdout.decode()))
    finally:
        process.kill()
        process.wait()
    assert busy.get("spinner_loop", 0) > 50 and busy.get("hasher_loop", 0) > 50
    assert "sleeper_loop" not in busy
    assert idle.get("sleeper_loop", 0) > 200  # sampled every round when idle threads are included
    # The main thread sleeps too: only --idle shows it.
    assert "main" not in busy and idle.get("main", 0) > 200


def test_gil_flag_keeps_only_the_gil_holder():
    interp = stage_default()
    process = start_threads_mix(interp)
    try:
        everything = functions_in(parse_folded(run_pytap("sample", "-x", process.pid, "-t", 3, "-r", 200).stdout.decode()))
        gil_only = functions_in(parse_folded(run_pytap("sample", "-x", process.pid, "-t", 3, "-r", 200, "--gil").stdout.decode()))
    finally:
        process.kill()
        process.wait()
    # The hasher is on a CPU without the GIL (hashlib releases it): present by default only.
    assert everything.get("hasher_loop", 0) > 100
    assert gil_only.get("spinner_loop", 0) > 100
    assert gil_only.get("hasher_loop", 0) < gil_only["spinner_loop"] * 0.05, gil_only


def test_threads_flag_roots_stacks_in_their_thread():
    interp = stage_default()
    process = start_threads_mix(interp)
    try:
        rows = parse_folded(run_pytap("sample", "-x", process.pid, "-t", 1, "--threads").stdout.decode())
    finally:
        process.kill()
        process.wait()
    roots = set(frames[0] for frames, _ in rows)
    assert any(root.startswith("thread spinner_loop (tid ") for root in roots), roots
    assert any(root.startswith("thread hasher_loop (tid ") for root in roots), roots


def test_subprocesses_are_followed_and_rooted_in_their_process():
    interp = stage_default()
    own_dir, host_dir = interp.stage()
    process = interp.popen(os.path.join(own_dir, "workers.py"), os.path.join(own_dir, "w.json"), 20)
    try:
        info = wait_for_file(os.path.join(host_dir, "w.json"), process)
        result = run_pytap("sample", "-x", process.pid, "-t", 3, "--subprocesses", timeout=60)
    finally:
        process.kill()
        process.wait()
    assert result.returncode == 0, result.stderr.decode()
    rows = parse_folded(result.stdout.decode())
    per_process = {}
    for frames, count in rows:
        m = re.match(r"^process (\d+) \(", frames[0])
        assert m, frames[0]
        if any(python_frame(f) and python_frame(f)[0] == "worker_spin" for f in frames):
            per_process[int(m.group(1))] = per_process.get(int(m.group(1)), 0) + count
    assert sorted(per_process) == sorted(info["workers"]), per_process
    assert all(count > 50 for count in per_process.values())


def test_target_exiting_mid_recording_keeps_the_profile():
    interp = stage_default()
    own_dir, host_dir = interp.stage()
    process = interp.popen(os.path.join(own_dir, "cpu_split.py"), os.path.join(own_dir, "t.json"), 2)
    try:
        time.sleep(0.5)
        started = time.time()
        result = run_pytap("sample", "-x", process.pid, "-t", 30, "-r", 500, timeout=60)
        elapsed = time.time() - started
    finally:
        process.wait()
    assert result.returncode == 0, result.stderr.decode()
    assert elapsed < 10
    assert "the target exited" in result.stderr.decode()
    counts = split_of(parse_folded(result.stdout.decode()), json.load(open(os.path.join(host_dir, "t.json"))))
    assert counts["work_a"] > 50 and counts["work_b"] > 50


def test_ctrl_c_writes_what_was_gathered():
    interp = stage_default()
    own_dir, host_dir = interp.stage()
    process = interp.popen(os.path.join(own_dir, "cpu_split.py"), os.path.join(own_dir, "t.json"), 30)
    out = os.path.join(host_dir, "interrupted.svg")
    try:
        time.sleep(0.5)
        sampler = subprocess.Popen([pytap_path(), "sample", "-x", str(process.pid), "-o", out],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(2)
        sampler.send_signal(signal.SIGINT)
        _, err = sampler.communicate(timeout=30)
        assert process.poll() is None, "the target must keep running"
    finally:
        process.kill()
        process.wait()
    assert sampler.returncode == 0, err.decode()
    with open(out) as f:
        svg = f.read()
    assert svg.startswith("<?xml") and "work_a" in svg


@pytest.mark.parametrize("extension,magic", [(".svg", b"<?xml"), (".json", b"{"), (".pb.gz", b"\x1f\x8b"), (".txt", None)])
def test_output_format_follows_the_extension(extension, magic):
    interp = stage_default()
    own_dir, host_dir = interp.stage()
    process = interp.popen(os.path.join(own_dir, "cpu_split.py"), os.path.join(own_dir, "t.json"), 10)
    out = os.path.join(host_dir, "profile" + extension)
    try:
        time.sleep(0.5)
        result = run_pytap("sample", "-x", process.pid, "-t", 1, "-o", out)
    finally:
        process.kill()
        process.wait()
    assert result.returncode == 0, result.stderr.decode()
    with open(out, "rb") as f:
        data = f.read()
    if magic:
        assert data.startswith(magic)
    else:
        assert b"work_" in data and parse_folded(data.decode())


def test_function_flag_aggregates_by_function_first_line():
    interp = stage_default()
    rows, truth, summary = record_cpu_split(interp, interp.stage(), seconds=1, rate=500, extra=("--function",))
    first_lines = dict((f["qualname"], f["first_line"]) for f in truth["functions"])
    seen = set()
    for frames, _ in rows:
        for label in frames:
            qualname, path, line = python_frame(label)
            if path == truth["work_a"]["file"] and qualname in first_lines:
                assert line == first_lines[qualname], label
                seen.add(qualname)
    assert {"work_a", "work_b", "main"} <= seen
    # One row per distinct call path: far fewer than by line.
    assert len(rows) < 20
