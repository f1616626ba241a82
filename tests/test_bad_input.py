"""Bad input is normal input: each gets one line naming the cause, and its exit code
(2 no such process, 3 permission denied, 4 not Python, 5 exited meanwhile, 6 partial
stacks, 64 usage). Never a trap, a backtrace or a hang."""
import json
import os
import random
import subprocess
import time

import pytest

import interpreters
from conftest import interpreter_params, pytap_path, run_pytap, require_interpreter


def one_line_error(result):
    err = result.stderr.decode()
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("pytap: error: "), err
    for word in ("Fatal error", "Stack dump", "backtrace", "Crash"):
        assert word not in err
    return lines[0]


def dead_pid():
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("command", ["dump", "sample"])
def test_pid_that_does_not_exist(command):
    pid = dead_pid()
    result = run_pytap(command, "--pid", pid)
    assert result.returncode == 2
    assert "no process with PID %d" % pid in one_line_error(result)


@pytest.mark.parametrize("command", ["dump", "sample", "top"])
def test_pid_that_is_not_python(command):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        time.sleep(0.1)
        result = run_pytap(command, "--pid", sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert result.returncode == 4
    line = one_line_error(result)
    assert "(sleep) is not a Python process" in line


@pytest.mark.parametrize("value", ["abc", "12x", "-5", ""])
def test_pid_that_is_not_a_number(value):
    result = run_pytap("dump", "--pid", value)
    assert result.returncode == 64
    err = result.stderr.decode()
    assert err.startswith("Error: "), err
    assert "pid" in err.splitlines()[0]


def test_permission_denied_for_another_users_process():
    interp = require_interpreter("pyenv-3.12")
    target = interp.popen("-c", "import time; time.sleep(60)")
    try:
        time.sleep(0.3)
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", pytap_path(),
                                 "dump", "--pid", str(target.pid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                timeout=30)
    finally:
        target.kill()
        target.wait()
    assert result.returncode == 3, result.stderr.decode()
    assert "permission denied reading process %d" % target.pid in one_line_error(result)
    assert "CAP_SYS_PTRACE" in result.stderr.decode()


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.10", "pyenv-3.12"]))
def test_python_that_exits_during_the_dump(interp, workload):
    """Kill a deep-stack target at random moments while dumping it: each run either
    completes or says the process exited (or no longer exists); none crashes or hangs."""
    outcomes = {}
    rng = random.Random(7)
    for attempt in range(12):
        w = workload(interp, "dump_target.py")
        w.truth()
        dumper = subprocess.Popen([pytap_path(), "dump", "--pid", str(w.pid), "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0, 0.004))
        w.stop()
        out, err = dumper.communicate(timeout=30)
        outcomes[dumper.returncode] = outcomes.get(dumper.returncode, 0) + 1
        if dumper.returncode == 0:
            json.loads(out.decode())
        else:
            assert dumper.returncode in (2, 5), err.decode()
            line = one_line_error(subprocess.CompletedProcess([], dumper.returncode, out, err))
            assert ("exited while pytap was reading it" in line or "no process with PID" in line
                        or "is a zombie" in line), line
    print("outcomes by exit code: %s" % outcomes)


@pytest.mark.parametrize("mode,expect", [("cycle", "cycle in the frame chain"), ("length", "unreadable code object")])
@pytest.mark.parametrize("interp", interpreter_params(["pyenv-2.7", "pyenv-3.10", "pyenv-3.11", "pyenv-3.12", "sid-3.14"]))
def test_corrupted_memory_gives_a_partial_stack(interp, mode, expect, workload):
    w = workload(interp, "corrupt_target.py", mode)
    truth = w.truth()
    started = time.time()
    result = run_pytap("dump", "--pid", w.pid, "--json", timeout=20)
    assert time.time() - started < 10
    assert result.returncode == 6, result.stderr.decode()
    warning = result.stderr.decode().strip()
    assert warning.startswith("pytap: warning: 1 of ") and expect in warning, warning
    data = json.loads(result.stdout.decode())
    threads = dict((t["ident"], t) for t in data["threads"])
    corrupted = threads[truth["ident"]]
    assert expect in corrupted["partial"]
    assert corrupted["frames"][0]["name"] == "park_sleep"
    if mode == "cycle":
        names = [f["name"] for f in corrupted["frames"]]
        assert names[:3] == ["park_sleep", "inner_corruptible_function", "outer"], names
    for ident, thread in threads.items():
        if ident != truth["ident"]:
            assert "partial" not in thread
