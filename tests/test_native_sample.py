"""`pytap sample --native` against real interpreters: native frames (zlib's deflate) with
the Python function that calls them rootward, stacks that reach the thread's start, kernel
frames, and a target that runs on untouched when pytap is killed mid-recording."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import interpreter_params, pytap_path, run_pytap

from test_sample import parse_folded

THREAD_STARTS = ("_start", "__libc_start_main", "__libc_start_call_main", "clone", "clone3", "start_thread")
NATIVE_INTERPRETERS = ["pyenv-3.11", "debian-3.11-static", "sid-3.14"]


def bpf_refused(result):
    err = result.stderr.decode()
    return "native sampling unavailable" in err or "BPF sampling unavailable" in err


def record(workload, interp, mode, *options, seconds=4):
    w = workload(interp, "native_work.py", mode, 30)
    truth = w.truth()
    time.sleep(0.3)
    result = run_pytap("sample", "-x", w.pid, "-t", seconds, "--rate", 1000, "--native", *options, timeout=90)
    assert result.returncode == 0, result.stderr.decode()
    if bpf_refused(result):
        pytest.skip("SKIPPED BPF not allowed here: " + result.stderr.decode().strip())
    return truth, parse_folded(result.stdout.decode()), result.stderr.decode()


def caller_rootward_of_deflate(stack, function):
    """Whether Python function `function` sits rootward of zlib's deflate in `stack` (root first)."""
    deflate = [i for i, label in enumerate(stack) if label.startswith("deflate")]
    python = [i for i, label in enumerate(stack) if label.startswith(function + " (")]
    return deflate and python and python[0] < deflate[0]


MISMATCH = "(native stack does not line up"


# The three interpreters (shared libpython, Debian's static stripped build with its
# -dbg files, sid 3.14) and the ten others alike: every stack merges (no marker saying the
# eval-loop frames and the Python calls did not line up), the Python caller sits rootward of
# deflate, and the stacks reach the thread's start.
@pytest.mark.parametrize("interp", interpreter_params())
def test_zlib_under_its_python_caller_and_stacks_reach_the_thread_start(workload, interp):
    truth, rows, summary = record(workload, interp, "zlib", seconds=3)
    total = sum(count for _, count in rows)
    assert total >= 50, summary
    assert "capture: native stacks captured by a BPF program" in summary
    mismatched = [stack for stack, _ in rows if any(label.startswith(MISMATCH) for label in stack)]
    assert not mismatched, "%d stacks do not line up, e.g. %s" % (len(mismatched), ";".join(mismatched[0]))
    function = truth["function"]

    under = sum(count for stack, count in rows if caller_rootward_of_deflate(stack, function))
    rooted = sum(count for stack, count in rows if stack[0] in THREAD_STARTS)
    assert under >= 0.85 * total, "%d of %d samples show %s rootward of deflate\n%s" % (under, total, function, summary)
    assert rooted >= 0.97 * total, "%d of %d stacks reach the thread start\n%s" % (rooted, total, summary)


# time.time() and time.monotonic() run clock_gettime in the vDSO, which has no file: its
# image is read from the target's memory, so those samples are named and unwound to the
# thread's start like the rest (they were an unnamed address under a mismatch marker).
@pytest.mark.parametrize("interp", interpreter_params(NATIVE_INTERPRETERS))
def test_clock_calls_in_the_vdso_are_named_and_unwound(workload, interp):
    truth, rows, summary = record(workload, interp, "clock", seconds=2)
    total = sum(count for _, count in rows)
    assert total >= 50, summary
    function = truth["function"]
    in_vdso = sum(count for stack, count in rows if any(label.startswith("__vdso_clock_gettime") for label in stack)
                  and any(label.startswith(function + " (") for label in stack))
    mismatched = sum(count for stack, count in rows if any(label.startswith(MISMATCH) for label in stack))
    rooted = sum(count for stack, count in rows if stack[0] in THREAD_STARTS)
    assert in_vdso >= 0.1 * total, "%d of %d samples in __vdso_clock_gettime under %s\n%s" % (in_vdso, total, function, summary)
    assert mismatched == 0, "%d of %d samples do not line up\n%s" % (mismatched, total, summary)
    assert rooted >= 0.97 * total, "%d of %d stacks reach the thread start\n%s" % (rooted, total, summary)


def stack_bytes_copied(summary):
    found = re.search(r"user stack copied: ([\d,]+) bytes a sample", summary)
    assert found, summary
    return int(found.group(1).replace(",", ""))


@pytest.mark.parametrize("interp", interpreter_params(NATIVE_INTERPRETERS))
def test_a_shallow_stack_is_copied_only_up_to_the_thread_start(workload, interp):
    # Once an unwind reached the thread start, the program copies the stack only up to that
    # frame's CFA: the zlib stack needs fewer pages than the full 16 KiB.
    truth, rows, summary = record(workload, interp, "zlib")
    total = sum(count for _, count in rows)
    assert total >= 50, summary
    assert stack_bytes_copied(summary) <= 8192, summary
    rooted = sum(count for stack, count in rows if stack[0] in THREAD_STARTS)
    assert rooted >= 0.97 * total, "%d of %d stacks reach the thread start\n%s" % (rooted, total, summary)


def live_reads_per_sample(summary):
    found = re.search(r"target memory read ([\d,]+) times \(([\d.]+) a sample\)", summary)
    assert found, summary
    return float(found.group(2))


# The sample is rebuilt from the program's copies, the identity of each frame's code object
# included: a read of the target per sample would take its memory-map lock, and the
# target's own brk/mmap (zlib's buffers) would wait for it (a read per sample was 1.2
# reads a sample here). Code objects first met are still read from the target (a few
# reads each, once). Versions whose code
# header tells code objects apart (3.12+) and those that need the name's and line
# table's headers too (up to 3.11).
@pytest.mark.parametrize("interp", interpreter_params(NATIVE_INTERPRETERS + ["pyenv-2.7", "pyenv-3.12"]))
def test_samples_are_rebuilt_from_the_copies_without_reading_the_target(workload, interp):
    truth, rows, summary = record(workload, interp, "zlib")
    total = sum(count for _, count in rows)
    assert total >= 50, summary
    assert live_reads_per_sample(summary) <= 0.2, summary


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11"]))
def test_a_stack_deeper_than_the_copy_still_reaches_the_thread_start(workload, interp):
    # 40 Python calls through C calls: far more than 16 KiB of native stack. The copy stays
    # at 16 KiB, the unwind reads the rest live and reaches the thread start as before.
    # Unwinding and naming ~300 native frames a sample is slow in a debug build: more time.
    truth, rows, summary = record(workload, interp, "deep", seconds=10)
    total = sum(count for _, count in rows)
    assert total >= 20, summary
    assert stack_bytes_copied(summary) >= 16384 - 4096, summary
    deep = sum(count for stack, count in rows
               if any(label.startswith("deflate") for label in stack)
               and sum(label.startswith(truth["function"] + " (") for label in stack) == 41)
    rooted = sum(count for stack, count in rows if stack[0] in THREAD_STARTS)
    assert deep >= 0.85 * total, "%d of %d samples show deflate under 41 calls\n%s" % (deep, total, summary)
    assert rooted >= 0.97 * total, "%d of %d stacks reach the thread start\n%s" % (rooted, total, summary)


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11"]))
def test_kernel_frames_on_top_with_kernel(workload, interp):
    truth, rows, summary = record(workload, interp, "kernel", "--kernel")
    total = sum(count for _, count in rows)
    in_kernel = sum(count for stack, count in rows if stack[-1].endswith("_[k]"))
    assert in_kernel >= 0.2 * total, "%d of %d samples end in kernel frames\n%s" % (in_kernel, total, summary)
    # Kernel frames sit above the user stack, never under it.
    for stack, _ in rows:
        kernel = [i for i, label in enumerate(stack) if label.endswith("_[k]")]
        if kernel:
            assert kernel == list(range(kernel[0], len(stack))), stack
    without = sum(count for stack, count in record(workload, interp, "kernel")[1]
                  for label in stack if label.endswith("_[k]"))
    assert without == 0


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11"]))
def test_sigkill_of_pytap_leaves_the_target_running_and_nothing_attached(workload, interp):
    w = workload(interp, "native_work.py", "zlib", 30)
    w.truth()
    sampler = subprocess.Popen([pytap_path(), "sample", "-x", str(w.pid), "-t", "20", "--native", "--rate", "1000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Wait until the perf events are open (pytap holds them as perf_event fds).
    deadline = time.time() + 20
    def perf_fds(pid):
        fds = []
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:[perf_event]":
                    fds.append(fd)
            except OSError:
                pass
        return fds
    while time.time() < deadline and sampler.poll() is None and not perf_fds(sampler.pid):
        time.sleep(0.05)
    if sampler.poll() is not None:
        err = sampler.stderr.read().decode()
        pytest.fail("pytap ended early: " + err)
    assert perf_fds(sampler.pid), "pytap opened no perf event"
    time.sleep(0.5)
    sampler.send_signal(signal.SIGKILL)
    sampler.wait()
    time.sleep(0.2)
    assert w.process.poll() is None, "the target died with pytap"
    state = open("/proc/%d/stat" % w.pid).read().rsplit(")", 1)[1].split()[0]
    assert state in ("R", "S"), "target state %s" % state
    # Its CPU time keeps growing: it runs on.
    def cpu(pid):
        fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    before = cpu(w.pid)
    time.sleep(0.5)
    assert cpu(w.pid) > before
    # No BPF program of pytap's is left in the kernel.
    if os.path.exists("/usr/sbin/bpftool"):
        listing = subprocess.run(["/usr/sbin/bpftool", "prog", "show"], stdout=subprocess.PIPE).stdout.decode()
        assert "on_sample" not in listing, listing


def task_states(pid):
    """{tid: (state letter, TracerPid)} of every thread of a process."""
    states = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            state = open("/proc/%d/task/%s/stat" % (pid, tid)).read().rsplit(")", 1)[1].split()[0]
            tracer = [line.split()[1] for line in open("/proc/%d/task/%s/status" % (pid, tid)) if line.startswith("TracerPid:")][0]
        except (IOError, OSError, IndexError):
            continue
        states[int(tid)] = (state, int(tracer))
    return states


def assert_running_untraced(w):
    assert w.process.poll() is None, "the target died"
    states = task_states(w.pid)
    assert states and all(state in ("R", "S", "D") and tracer == 0 for state, tracer in states.values()), states

    def cpu(pid):
        fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    before = cpu(w.pid)
    time.sleep(0.3)
    assert cpu(w.pid) > before, "the target does not run"


def check_zlib_merged(rows, function, summary):
    total = sum(count for _, count in rows)
    assert total >= 30, summary
    under = sum(count for stack, count in rows
                if any(label.startswith("deflate") for label in stack)
                and min(i for i, label in enumerate(stack) if label.startswith(function + " ("))
                < min(i for i, label in enumerate(stack) if label.startswith("deflate")))
    assert under >= 0.85 * total, "%d of %d samples show %s rootward of deflate\n%s" % (under, total, function, summary)
    assert not any("does not line up" in label for stack, _ in rows for label in stack), summary


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11"]))
def test_without_bpf_rights_says_so_in_one_line_and_stops_threads_briefly_instead(workload, interp):
    if not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("SKIPPED setpriv (util-linux) is not installed")
    w = workload(interp, "native_work.py", "zlib", 30)
    truth = w.truth()
    # Root with CAP_SYS_PTRACE (memory reads and ptrace work) but without CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN.
    drop = "-bpf,-perfmon,-sys_admin"
    result = subprocess.run(["/usr/bin/setpriv", "--bounding-set=" + drop, "--inh-caps=" + drop,
                             pytap_path(), "sample", "-x", str(w.pid), "-t", "2", "--rate", "200", "--native"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    refusals = [line for line in err.splitlines() if "BPF sampling unavailable" in line]
    assert len(refusals) == 2 and "Operation not permitted" in refusals[0], err  # the warning, and the summary's capture line
    assert "capture: ptrace: each running thread stopped briefly per sample" in err
    check_zlib_merged(parse_folded(result.stdout.decode()), truth["function"], err)
    assert_running_untraced(w)


@pytest.mark.parametrize("interp", interpreter_params(NATIVE_INTERPRETERS))
def test_ptrace_fallback_merges_and_leaves_the_target_running(workload, interp):
    w = workload(interp, "native_work.py", "zlib", 30)
    truth = w.truth()
    time.sleep(0.3)
    env = dict(os.environ, PYTAP_NATIVE_CAPTURE="ptrace")
    result = run_pytap("sample", "-x", w.pid, "-t", 3, "--rate", 200, "--native", timeout=90, env=env)
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    assert len([line for line in err.splitlines() if "BPF sampling unavailable" in line]) == 2, err
    assert "capture: ptrace" in err
    rows = parse_folded(result.stdout.decode())
    check_zlib_merged(rows, truth["function"], err)
    total = sum(count for _, count in rows)
    rooted = sum(count for stack, count in rows if stack[0] in THREAD_STARTS)
    assert rooted >= 0.97 * total, "%d of %d stacks reach the thread start\n%s" % (rooted, total, err)
    assert_running_untraced(w)


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11"]))
def test_sigkill_of_pytap_during_ptrace_sampling_leaves_the_target_running(workload, interp):
    w = workload(interp, "native_work.py", "zlib", 60)
    w.truth()
    env = dict(os.environ, PYTAP_NATIVE_CAPTURE="ptrace")
    for attempt in range(6):
        sampler = subprocess.Popen([pytap_path(), "sample", "-x", str(w.pid), "-t", "20", "--native", "--rate", "1000"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        # Wait until it samples (its progress line counts samples), then kill it at a varying moment.
        deadline = time.time() + 20
        seen = b""
        while time.time() < deadline and sampler.poll() is None and b"capture: ptrace" not in seen and b"BPF sampling unavailable" not in seen:
            seen += os.read(sampler.stderr.fileno(), 4096)
        assert sampler.poll() is None, seen.decode()
        time.sleep(0.2 + 0.13 * attempt)
        sampler.send_signal(signal.SIGKILL)
        sampler.wait()
        sampler.stdout.close()
        sampler.stderr.close()
        time.sleep(0.05)
        assert_running_untraced(w)


def object_symbols(path):
    """{function name: (address, size)} from the object's symbols (`nm -S`)."""
    listing = subprocess.run(["nm", "-S", "--defined-only", path], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout.decode()
    symbols = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW":
            symbols.setdefault(fields[3], (int(fields[0], 16), int(fields[1], 16)))
    return symbols


def addr2line_entries(path, start, size):
    """Every (function, file name, line) `addr2line -i -f` gives at some address of a function."""
    addresses = "\n".join("0x%x" % a for a in range(start, start + size))
    output = subprocess.run(["addr2line", "-i", "-f", "-e", path], input=addresses.encode(),
                            stdout=subprocess.PIPE, timeout=120).stdout.decode().splitlines()
    entries = set()
    for name, location in zip(output[0::2], output[1::2]):
        where = location.split(" ")[0]
        file, _, line = where.rpartition(":")
        if line.isdigit():
            entries.add((name, os.path.basename(file), int(line)))
    return entries


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11"]))
def test_native_frames_carry_file_line_and_inlined_frames_as_addr2line_gives_them(workload, interp, tmp_path):
    w = workload(interp, "native_work.py", "zlib", 30)
    w.truth()
    time.sleep(0.3)
    out = tmp_path / "native.speedscope.json"
    result = run_pytap("sample", "-x", w.pid, "-t", 3, "--rate", 1000, "--native", "-o", out, timeout=90)
    assert result.returncode == 0, result.stderr.decode()
    if bpf_refused(result):
        pytest.skip("SKIPPED BPF not allowed here: " + result.stderr.decode().strip())
    with open(str(out)) as f:
        profile = json.load(f)
    frames = profile["shared"]["frames"]
    stacks = {tuple(sample) for thread in profile["profiles"] for sample in thread["samples"]}
    # The interpreter's objects that have DWARF: libpython and the zlib extension module.
    with open("/proc/%d/maps" % w.pid) as f:
        paths = sorted({line.split()[-1] for line in f if "libpython" in line or "/zlib." in line})
    objects = [(path, object_symbols(path)) for path in paths]
    assert len(objects) == 2, paths

    def owner(name):
        return next(((path, symbols[name]) for path, symbols in objects if name in symbols), None)

    cache = {}
    def entries(name):
        if name not in cache:
            path, (start, size) = owner(name)
            cache[name] = addr2line_entries(path, start, size) if size <= 16384 else None
        return cache[name]

    interpreter_frames = with_line = inlined = checked = 0
    mismatches = []
    for stack in stacks:
        for position, index in enumerate(stack):
            frame = frames[index]
            if "Python-3.11" not in frame.get("file", "") and not owner(frame["name"]):
                continue
            interpreter_frames += 1
            if "line" not in frame:
                continue
            with_line += 1
            inlined += owner(frame["name"]) is None
            # The function the machine code belongs to is this frame or one rootward of it
            # (an inlined call sits leafward of the function it is inlined into).
            want = (frame["name"], os.path.basename(frame["file"]), frame["line"])
            found = None
            for outer in reversed(stack[:position + 1]):
                name = frames[outer]["name"]
                if owner(name) is None:
                    if "Python-3.11" in frames[outer].get("file", ""):
                        continue  # another inlined frame
                    break
                known = entries(name)
                if known is None:
                    found = False
                    break
                if want in known:
                    found = True
                    break
            if found is None:
                mismatches.append(want)
            elif found:
                checked += 1
    assert interpreter_frames > 20, result.stderr.decode()
    assert with_line >= 0.95 * interpreter_frames, "%d of %d interpreter frames have file:line" % (with_line, interpreter_frames)
    assert inlined > 0, "no inlined frame"
    assert checked > 20 and not mismatches, "%d agree with addr2line; not found: %s" % (checked, mismatches[:10])


WAIT_FRAME = re.compile(r"nanosleep|select|poll|futex|sem_|Semaphore|cond_.*wait")


@pytest.mark.parametrize("flag", ["--idle", "--mode=wall"])
@pytest.mark.parametrize("interp", interpreter_params(NATIVE_INTERPRETERS))
def test_idle_threads_show_the_native_wait_under_their_python_caller(workload, interp, flag):
    """Threads asleep in time.sleep, select, socket.recv and a lock wait: each wall-clock sample
    shows the Python function, the native wait above it and the kernel's schedule on top."""
    w = workload(interp, "idle_waits.py", 30)
    truth = w.truth()
    time.sleep(0.3)
    result = run_pytap("sample", "-x", w.pid, "-t", 4, "--rate", 100, flag, "--native", "--kernel", timeout=90)
    assert result.returncode == 0, result.stderr.decode()
    if bpf_refused(result):
        pytest.skip("SKIPPED BPF not allowed here: " + result.stderr.decode().strip())
    summary = result.stderr.decode()
    assert "for sleeping threads on the scheduler's switch" in summary, summary
    rows = parse_folded(result.stdout.decode())
    for function in sorted(truth["functions"].values()):
        mine = [(stack, count) for stack, count in rows if any(label.startswith(function + " (") for label in stack)]
        total = sum(count for _, count in mine)
        # (A debug build on a loaded machine spends seconds reading the first units' lines.)
        assert total >= 20, "%s: %d samples\n%s" % (function, total, summary)

        def waits_under_caller(stack):
            caller = max(i for i, label in enumerate(stack) if label.startswith(function + " ("))
            waits = [i for i, label in enumerate(stack) if i > caller and WAIT_FRAME.search(label) and not label.endswith("_[k]")]
            scheduled = [i for i, label in enumerate(stack) if label in ("schedule_[k]", "__schedule_[k]")]
            return waits and scheduled and waits[0] < scheduled[0] and stack[-1].endswith("_[k]")

        shown = sum(count for stack, count in mine if waits_under_caller(stack))
        example = max(mine, key=lambda row: row[1])[0]
        assert shown >= 0.8 * total, "%s: %d of %d samples show the wait under it, e.g. %s\n%s" % (
            function, shown, total, ";".join(example), summary)
    # A thread asleep since before sampling began never went off the CPU under the program:
    # its Python frames, marked, rather than a made-up native stack.
    forever = [(stack, count) for stack, count in rows if any(label.startswith(truth["forever"] + " (") for label in stack)]
    assert forever and all(stack[-1] == "(asleep since sampling began: no native stack)" for stack, _ in forever), forever[:3]


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11"]))
def test_cxx_frames_are_demangled(workload, interp):
    """numpy's sort is C++ templates: their frames carry demangled names, none `_Z…`."""
    if subprocess.call([interp.host_path, "-c", "import numpy"]) != 0:
        pytest.skip("SKIPPED numpy is not installed for " + str(interp))
    truth, rows, summary = record(workload, interp, "cxx")
    total = sum(count for _, count in rows)
    assert total >= 50, summary
    mangled = sorted({label for stack, _ in rows for label in stack if label.startswith("_Z")})
    assert not mangled, mangled[:5]

    def sort_under_caller(stack):
        python = [i for i, label in enumerate(stack) if label.startswith(truth["function"] + " (")]
        cxx = [i for i, label in enumerate(stack) if "np::qsort_simd::" in label or "np::" in label and "<" in label]
        return python and cxx and python[0] < cxx[0]

    shown = sum(count for stack, count in rows if sort_under_caller(stack))
    assert shown >= 0.5 * total, "%d of %d samples show numpy's C++ sort by name under %s\n%s" % (shown, total, truth["function"], summary)
