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
