"""`pytap top` driven in a real terminal (tmux: send-keys, capture-pane), and its plain
text mode for scripts."""
import os
import shutil
import signal
import subprocess
import time

import pytest

import interpreters
from conftest import pytap_path, run_pytap, require_interpreter, skip_or_fail


def target_interp():
    interp = require_interpreter("pyenv-3.12")
    return interp


@pytest.fixture
def busy_target():
    interp = target_interp()
    own_dir, host_dir = interp.stage()
    process = interp.popen(os.path.join(own_dir, "cpu_split.py"), os.path.join(own_dir, "t.json"), 60,
                           stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    yield process
    process.kill()
    process.wait()


class Tmux(object):
    def __init__(self, command, width=160, height=40):
        if not shutil.which("tmux"):
            skip_or_fail("tmux is not installed (scripts/setup-matrix.sh installs it)")
        self.session = "pytap-top-%d" % os.getpid()
        subprocess.run(["tmux", "kill-session", "-t", self.session], stderr=subprocess.DEVNULL)
        shell = "%s; echo EXITED $?; sleep 60" % command
        subprocess.check_call(["tmux", "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), shell])

    def screen(self):
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], stdout=subprocess.PIPE,
                              text=True).stdout

    def keys(self, *keys):
        subprocess.check_call(["tmux", "send-keys", "-t", self.session] + list(keys))

    def wait_for(self, text, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError("%r not on screen:\n%s" % (text, self.screen()))

    def close(self):
        subprocess.run(["tmux", "kill-session", "-t", self.session], stderr=subprocess.DEVNULL)


def test_top_in_a_terminal(busy_target):
    tmux = Tmux("%s top --pid %d --interval 0.5 --rate 200" % (pytap_path(), busy_target.pid))
    try:
        screen = tmux.wait_for("work_b (")
        assert "pytap top: process %d" % busy_target.pid in screen
        assert "%Own  %Total  OwnTime  TotalTime  Function (file:line)" in screen
        assert "(sorted by own)" in screen
        rows = [l for l in screen.splitlines() if "cpu_split.py" in l]
        # work_b gets about 70% of the CPU: it is listed before work_a when sorting by own.
        assert rows and "work_b" in rows[0], screen

        tmux.keys("2")
        screen = tmux.wait_for("(sorted by total)")
        # By total, main (which calls both) comes first among the workload's functions.
        rows = [l for l in screen.splitlines() if "cpu_split.py" in l]
        assert rows[0].split()[4] in ("<module>", "main"), screen

        tmux.keys("t")
        # cpu_split.py never imports threading, so the thread has no name: ident and tid.
        tmux.wait_for("(tid %d)" % busy_target.pid)

        tmux.keys("p")
        tmux.wait_for("[paused]")
        tmux.keys("p")

        tmux.keys("q")
        screen = tmux.wait_for("EXITED 0")
        # The alternate screen is gone: only the shell's line is left.
        assert "%Own" not in screen
        assert busy_target.poll() is None, "the target must keep running after top quits"
    finally:
        tmux.close()


def test_top_quits_on_ctrl_c(busy_target):
    tmux = Tmux("%s top --pid %d --interval 0.5" % (pytap_path(), busy_target.pid))
    try:
        tmux.wait_for("work_")
        tmux.keys("C-c")
        tmux.wait_for("EXITED 0")
    finally:
        tmux.close()


def test_top_once_prints_one_plain_table(busy_target):
    result = run_pytap("top", "--pid", busy_target.pid, "--once", "--interval", 1)
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    assert "\x1b[" not in text
    assert text.count("%Own  %Total") == 1
    assert "work_b (" in text and "work_a (" in text


def test_top_without_a_terminal_prints_a_table_per_interval(busy_target):
    top = subprocess.Popen([pytap_path(), "top", "--pid", str(busy_target.pid), "--interval", "0.5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2.3)
    top.send_signal(signal.SIGINT)
    out, err = top.communicate(timeout=10)
    assert top.returncode == 0, err.decode()
    assert out.decode().count("%Own  %Total") >= 3


def native_rows(text):
    """[(function label, kind)] of a top table with a Kind column."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[0].endswith("%") and fields[4] in ("py", "native", "kernel", "-"):
            rows.append((" ".join(fields[5:]), fields[4]))
    return rows


# `top --native`: C functions are rows of their own, their kind in a column: zlib's (a
# library's frames, named with its file), the kernel's, and the workload's Python function
# of kind py. The target runs on afterwards.
@pytest.mark.parametrize("interp_name", ["pyenv-3.11"])
def test_top_native_lists_c_functions_with_their_kind(workload, interp_name):
    interp = require_interpreter(interp_name)
    w = workload(interp, "native_work.py", "zlib", 30)
    w.truth()
    result = run_pytap("top", "--pid", w.pid, "--native", "--kernel", "--once", "--interval", 2, "--rate", 500,
                       "--sort", "total", timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    if "Python frames only" in text:
        pytest.skip("SKIPPED BPF not allowed here: " + text.splitlines()[2])
    assert "capture: native stacks by BPF (target never stopped)" in text, text
    assert "Kind    Function (file:line)" in text and "(sorted by total)" in text, text
    rows = native_rows(text)
    assert any(label.startswith("compress_forever (") and kind == "py" for label, kind in rows), text
    # zlib's functions (`deflate [libz.so.1]`, or a static one by its unwind entry,
    # `libz.so.1.2.13+0x5d80`), and with --kernel the page faults its buffers take.
    assert any("libz.so" in label and kind == "native" for label, kind in rows), text
    # Kernel functions are rows too (few samples each: looked for in all rows, by own).
    result = run_pytap("top", "--pid", w.pid, "--native", "--kernel", "--once", "--interval", 2, "--rate", 500, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    assert any(label.endswith("_[k]") and kind == "kernel" for label, kind in native_rows(text)), text
    # By function: one row per native function, not one per source line of it.
    labels = [label for label, _ in rows]
    assert len(labels) == len(set(labels)), text
    assert w.process.poll() is None, "the target must keep running after top --native"


def test_top_native_colours_native_rows_in_a_terminal(workload):
    interp = require_interpreter("pyenv-3.11")
    w = workload(interp, "native_work.py", "zlib", 30)
    w.truth()
    tmux = Tmux("%s top --pid %d --native --interval 0.5 --rate 200" % (pytap_path(), w.pid))
    try:
        tmux.wait_for("libz.so")
        coloured = subprocess.run(["tmux", "capture-pane", "-p", "-e", "-t", tmux.session], stdout=subprocess.PIPE,
                                  text=True).stdout
        # Native rows in blue (the flame graph's native colour), Python rows uncoloured.
        assert any("\x1b[34m" in line and "libz.so" in line for line in coloured.splitlines()), coloured
        assert any("compress_forever (" in line and "\x1b[34m" not in line for line in coloured.splitlines()), coloured
        tmux.keys("q")
        tmux.wait_for("EXITED 0")
    finally:
        tmux.close()
