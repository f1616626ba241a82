"""`pytap dump --core`: a core of the dump workload, made by gdb's gcore or by the kernel,
must read as the interpreter's own view (the same truth as the live dump tests). Files
gone from disk are found with --sysroot / --executable; a changed file, a truncated or a
garbage core is a one-line error."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import interpreters
from conftest import interpreter_params, run_pytap, require_interpreter, skip_or_fail
from test_dump import FRAME_KEYS, dump_json, process_and_threads_match
from test_bad_input import one_line_error


def need_gcore(interp=None):
    found = os.path.exists(interp.chroot + "/usr/bin/gcore") if interp is not None and interp.chroot else shutil.which("gcore")
    if not found:
        skip_or_fail("gdb's gcore is not installed (scripts/setup-matrix.sh installs it, in the chroot too)")


def gcore_command(interp):
    """gcore from the target's own system: the host's gdb 13 cannot read the guard pages
    glibc 2.42+ puts in thread stacks (MADV_GUARD_INSTALL) and leaves every other thread's
    stack zero; the chroot's gdb 18 reads them."""
    if interp is not None and interp.chroot:
        return ["chroot", interp.chroot, "/usr/bin/gcore"]
    return ["gcore"]


def settled(w):
    """The truth, once the reporter thread has gone (it is not part of the truth)."""
    truth = w.truth()
    dump_json(w.pid, exclude_ident=truth["reporter_ident"])
    return truth


chroot_core_directories = []


@pytest.fixture(autouse=True)
def remove_chroot_cores():
    yield
    while chroot_core_directories:
        shutil.rmtree(chroot_core_directories.pop(), ignore_errors=True)


def gcore(pid, directory, interp=None):
    """The path of a complete core of `pid`, written by gdb's gcore of the target's system.
    gdb says "Memory read failed" for memory it left out (zeros in the core); only the
    vsyscall page, which no process reads, may be missing."""
    chroot = interp.chroot if interp is not None and interp.chroot else ""
    if chroot:
        directory = tempfile.mkdtemp(prefix="pytap-gcore-", dir=chroot + "/tmp")
        chroot_core_directories.append(directory)
    prefix = os.path.join(directory, "core")
    result = subprocess.run(gcore_command(interp) + ["-o", prefix[len(chroot):], str(pid)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    path = "%s.%d" % (prefix, pid)
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0 and os.path.exists(path), output[-2000:]
    missing = [line for line in output.splitlines()
               if line.startswith("warning: Memory read failed") and "0xffffffffff600000" not in line]
    assert not missing, "gcore left memory out of the core:\n" + "\n".join(missing[:5])
    return path


def core_args(interp):
    return ["--sysroot", interp.chroot] if interp.chroot else []


def dump_core(path, *args):
    """The JSON dump of a core."""
    result = run_pytap("dump", "--core", path, "--json", *args)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout.decode("utf-8"))


def assert_equals_truth(data, truth, pid, interp):
    """The core's view equals the truth: every thread, whole."""
    got, want = process_and_threads_match(data, truth, pid)
    main = [t for t in truth["threads"] if t["role"] == "main"][0]
    assert "partial" not in got[main["ident"]], "the main thread's stack is always in the core"
    for ident, expected in want.items():
        thread = got[ident]
        role = expected["role"]
        assert thread["tid"] == expected["tid"], role
        assert thread["name"] == expected["name"], role
        frames = [dict((k, f[k]) for k in FRAME_KEYS) for f in thread["frames"]]
        assert "partial" not in thread, (role, thread.get("partial"))
        assert frames == expected["frames"], "%s: frames differ" % role


def spinner_state(data, truth):
    """(spinner holds the GIL, spinner idle); asserts every parked thread is idle, without the GIL."""
    roles = dict((t["ident"], t["role"]) for t in truth["threads"])
    spinner = None
    for thread in data["threads"]:
        role = roles.get(thread["ident"])
        if role == "spinner":
            spinner = thread
        elif role is not None:
            assert thread["idle"] is True, role
            assert thread["gil"] is False, role
    return spinner["gil"], spinner["idle"]


@pytest.mark.parametrize("interp", interpreter_params())
def test_gcore_equals_interpreter_truth(interp, workload, tmp_path):
    need_gcore(interp)
    w = workload(interp, "dump_target.py")
    truth = settled(w)
    # The spinner may drop the GIL for a moment (2.7 does every 100 ticks): a few cores at most.
    for attempt in range(4):
        path = gcore(w.pid, str(tmp_path), interp)
        data = dump_core(path, *core_args(interp))
        assert_equals_truth(data, truth, w.pid, interp)
        gil, idle = spinner_state(data, truth)
        assert idle is False, "the spinning thread shows as idle"
        if gil:
            break
        os.unlink(path)
    assert gil, "the spinning thread never showed as holding the GIL"


@contextlib.contextmanager
def kernel_core_pattern(pattern):
    with open("/proc/sys/kernel/core_pattern") as f:
        saved = f.read().rstrip("\n")
    with open("/proc/sys/kernel/core_pattern", "w") as f:
        f.write(pattern)
    try:
        yield
    finally:
        with open("/proc/sys/kernel/core_pattern", "w") as f:
            f.write(saved)


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11", "sid-3.14", "pyenv-2.7"]))
def test_kernel_core_equals_interpreter_truth(interp, workload):
    w = workload(interp, "dump_target.py")
    truth = settled(w)
    # The kernel writes the core where the pattern says, as the dying process sees the path
    # (inside its chroot). Default coredump_filter: read-only file pages are not dumped,
    # pytap reads them from the files.
    directory = tempfile.mkdtemp(prefix="pytap-kcore-", dir=(interp.chroot or "") + "/tmp")
    own = directory[len(interp.chroot):] if interp.chroot else directory
    subprocess.run(["prlimit", "--pid", str(w.pid), "--core=unlimited"], check=True)
    with kernel_core_pattern(os.path.join(own, "core.%p")):
        w.process.send_signal(signal.SIGABRT)
        w.process.wait(timeout=60)
    path = os.path.join(directory, "core.%d" % w.pid)
    try:
        assert os.path.exists(path), "the kernel wrote no core (status %s)" % w.process.returncode
        data = dump_core(path, *core_args(interp))
        assert_equals_truth(data, truth, w.pid, interp)
        spinner_state(data, truth)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def start_copied_python(workload, copy_dir):
    """Debian's static python3.11 run from a copy, so that the copy can be made to disappear."""
    interp = require_interpreter("debian-3.11-static")
    path = os.path.join(copy_dir, "python3.11")
    shutil.copy(interp.host_path, path)
    copied = interpreters.Interpreter("copied-3.11", path, (3, 11), static=True)
    w = workload(copied, "dump_target.py", env=dict(os.environ, PYTHONHOME="/usr"))
    return w, path


def test_core_of_a_process_whose_files_are_gone(workload, tmp_path):
    need_gcore()
    copy_dir = tempfile.mkdtemp(prefix="pytap-gone-")
    sysroot = str(tmp_path / "sysroot")
    try:
        w, path = start_copied_python(workload, copy_dir)
        truth = settled(w)
        core = gcore(w.pid, str(tmp_path))
        w.stop()
        # The executable moves to a sysroot (as if the core were read on another machine).
        os.makedirs(sysroot + copy_dir)
        shutil.move(path, sysroot + path)

        result = run_pytap("dump", "--core", core)
        assert result.returncode != 0
        assert path in one_line_error(result)

        assert_equals_truth(dump_core(core, "--sysroot", sysroot), truth, w.pid, None)
        assert_equals_truth(dump_core(core, "--executable", sysroot + path), truth, w.pid, None)
    finally:
        shutil.rmtree(copy_dir, ignore_errors=True)


def test_core_whose_executable_changed_is_an_error(workload, tmp_path):
    need_gcore()
    other = require_interpreter("pyenv-3.12").host_path
    copy_dir = tempfile.mkdtemp(prefix="pytap-changed-")
    try:
        w, path = start_copied_python(workload, copy_dir)
        settled(w)
        core = gcore(w.pid, str(tmp_path))
        w.stop()
        os.unlink(path)
        shutil.copy(other, path)
        result = run_pytap("dump", "--core", core)
        assert result.returncode == 1
        line = one_line_error(result)
        assert path in line and "changed" in line, line
    finally:
        shutil.rmtree(copy_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def small_core(tmp_path_factory):
    need_gcore()
    interp = require_interpreter("pyenv-3.12")
    directory = str(tmp_path_factory.mktemp("core"))
    process = interp.popen("-c", "import time; time.sleep(60)")
    try:
        time.sleep(0.5)
        return gcore(process.pid, directory)
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 0.99])
def test_truncated_core_is_one_line_error(small_core, tmp_path, fraction):
    with open(small_core, "rb") as f:
        data = f.read()
    cut = str(tmp_path / "cut")
    with open(cut, "wb") as f:
        f.write(data[:int(len(data) * fraction)])
    result = run_pytap("dump", "--core", cut)
    assert result.returncode == 1
    line = one_line_error(result)
    assert cut in line, line
    if fraction >= 0.5:
        assert "truncated" in line, line


def test_garbage_and_wrong_files_as_core(tmp_path):
    garbage = str(tmp_path / "garbage")
    with open(garbage, "wb") as f:
        f.write(os.urandom(100000))
    for path, words in ((garbage, "not a readable core file"), ("/bin/true", "not a core file"),
                        (str(tmp_path / "absent"), "absent")):
        result = run_pytap("dump", "--core", path)
        assert result.returncode == 1, path
        line = one_line_error(result)
        assert words in line, line


def test_core_and_pid_are_exclusive():
    result = run_pytap("dump", "--core", "/bin/true", "--pid", "1")
    assert result.returncode == 64
    result = run_pytap("dump", "--pid", "1", "--sysroot", "/")
    assert result.returncode == 64


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-2.7", "pyenv-3.12", "pyenv-3.13", "debian-3.11-static"]))
def test_core_locals_equal_the_frames_own(interp, workload, tmp_path):
    need_gcore(interp)
    w = workload(interp, "locals_target.py")
    truth = w.truth()
    core = gcore(w.pid, str(tmp_path), interp)
    w.stop()
    data = dump_core(core, "--locals", *core_args(interp))
    threads = [t for t in data["threads"] if t["name"] == "locals"]
    assert len(threads) == 1, [t["name"] for t in data["threads"]]
    by_name = dict((f["name"], f) for f in threads[0]["frames"])
    for expected in truth["frames"]:
        assert by_name[expected["function"]]["locals"] == expected["locals"], expected["function"]
