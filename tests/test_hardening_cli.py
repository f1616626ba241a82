"""Hardening of the command line (issue 6, items 9-12 and 14): what `-o` does with
devices, FIFOs and symlinks; signals during `sample` and `top`; the terminal around
`top`; launch mode (`-- cmd`): duration, signals, exit status, several Pythons in a row;
control characters from the target in text outputs; and small bad inputs."""
import json
import os
import signal
import stat
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree

import pytest

import interpreters
from conftest import interpreter_params, pytap_path, run_pytap
from test_top import Tmux

BUSY = "import time\ndef spin():\n    while True:\n        sum(range(1000))\nspin()\n"


def interp(name="pyenv-3.12"):
    found = interpreters.BY_NAME[name]
    if found.missing_reason():
        pytest.skip("SKIPPED " + found.missing_reason())
    return found


@pytest.fixture
def busy():
    process = subprocess.Popen([interp().path, "-c", BUSY], stdin=subprocess.DEVNULL)
    time.sleep(0.4)
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def scratch():
    with tempfile.TemporaryDirectory(prefix="pytap-hardening-") as directory:
        yield directory


def wait_for_file(path, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path) as f:
                return f.read()
        time.sleep(0.05)
    raise AssertionError("%s was not written" % path)


def is_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except IOError:
        return False


# Item 9: -o never replaces what is not a regular file, follows symlinks, keeps owner and
# mode, and checks the path before recording.

def test_output_to_a_device_writes_through(busy, scratch):
    device = os.path.join(scratch, "null")
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    result = run_pytap("sample", "--pid", busy.pid, "-t", "0.3", "-o", device, "-f", "folded")
    assert result.returncode == 0, result.stderr.decode()
    assert stat.S_ISCHR(os.stat(device).st_mode), "the device node was replaced"
    assert os.listdir(scratch) == ["null"]


def test_output_to_a_fifo_writes_through(busy, scratch):
    fifo = os.path.join(scratch, "fifo")
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo).read()))
    reader.start()
    result = run_pytap("sample", "--pid", busy.pid, "-t", "0.5", "-o", fifo, "-f", "folded")
    reader.join(10)
    assert result.returncode == 0, result.stderr.decode()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced"
    assert received and "spin (<string>:" in received[0], received


def test_output_to_a_process_substitution_and_dev_stdout(busy, scratch):
    out = os.path.join(scratch, "out.txt")
    script = "%s sample --pid %d -t 0.5 -f folded -o >(cat > %s)" % (pytap_path(), busy.pid, out)
    result = subprocess.run(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    assert "spin (<string>:" in wait_for_file(out)
    result = run_pytap("sample", "--pid", busy.pid, "-t", "0.5", "-f", "folded", "-o", "/dev/stdout")
    assert result.returncode == 0, result.stderr.decode()
    assert "spin (<string>:" in result.stdout.decode()


def test_output_follows_a_symlink_and_keeps_owner_and_mode(busy, scratch):
    real = os.path.join(scratch, "real.txt")
    with open(real, "w") as f:
        f.write("old\n")
    os.chown(real, 65534, 65534)
    os.chmod(real, 0o640)
    link = os.path.join(scratch, "link.txt")
    os.symlink("real.txt", link)
    result = run_pytap("sample", "--pid", busy.pid, "-t", "0.3", "-o", link)
    assert result.returncode == 0, result.stderr.decode()
    assert os.path.islink(link) and os.readlink(link) == "real.txt", "the symlink was replaced"
    info = os.stat(real)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)
    with open(real) as f:
        assert "spin (<string>:" in f.read()
    assert sorted(os.listdir(scratch)) == ["link.txt", "real.txt"]


@pytest.mark.parametrize("path,reason", [
    ("missing-dir/profile.svg", "the directory %s/missing-dir does not exist"),
    ("out/", "names a directory"),
    (".", "it is a directory"),
])
def test_an_unwritable_output_fails_before_recording(scratch, path, reason):
    """-o out/ -f svg and friends: one clear line at once, and the command is never started."""
    marker = os.path.join(scratch, "started")
    started = time.time()
    result = run_pytap("sample", "-t", "30", "-f", "svg", "-o", os.path.join(scratch, path), "--",
                       "sh", "-c", "touch %s; sleep 30" % marker, timeout=30)
    assert time.time() - started < 5
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pytap: error: cannot write "), lines
    assert (reason % scratch if "%s" in reason else reason) in lines[0]
    assert not os.path.exists(marker), "the command was started before the output was checked"


# Item 10: signals and the terminal.

@pytest.mark.parametrize("signo", [signal.SIGHUP, signal.SIGUSR1, signal.SIGALRM, signal.SIGQUIT])
def test_sample_writes_its_profile_on_a_signal(busy, scratch, signo):
    out = os.path.join(scratch, "profile.txt")
    sampler = subprocess.Popen([pytap_path(), "sample", "--pid", str(busy.pid), "-o", out],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    sampler.send_signal(signo)
    _, err = sampler.communicate(timeout=15)
    assert sampler.returncode == 0, (sampler.returncode, err.decode())
    with open(out) as f:
        assert "spin (<string>:" in f.read()
    assert busy.poll() is None


def pane(tmux, variable):
    return subprocess.run(["tmux", "display-message", "-p", "-t", tmux.session, "#{%s}" % variable],
                          stdout=subprocess.PIPE, text=True).stdout.strip()


def wait_until(predicate, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


class InteractiveTmux(Tmux):
    """A tmux pane with an interactive bash (job control), commands typed in it."""

    def __init__(self):
        Tmux.__init__(self, "PS1='$ ' bash --norc --noprofile -i")
        time.sleep(0.3)

    def type(self, line):
        self.keys(line, "Enter")


def test_top_ctrl_z_and_fg_give_the_terminal_back_and_take_it_again(busy):
    tmux = InteractiveTmux()
    try:
        tmux.type("%s top --pid %d --interval 0.3" % (pytap_path(), busy.pid))
        tmux.wait_for("%Own")
        assert pane(tmux, "alternate_on") == "1"
        tmux.keys("C-z")
        tmux.wait_for("Stopped")
        assert wait_until(lambda: pane(tmux, "alternate_on") == "0"), "still in the alternate screen after Ctrl-Z"
        assert pane(tmux, "cursor_flag") == "1", "cursor left hidden after Ctrl-Z"
        tmux.type("fg")
        assert wait_until(lambda: pane(tmux, "alternate_on") == "1"), "fg did not bring top back"
        tmux.wait_for("%Own")
        tmux.keys("q")
        assert wait_until(lambda: pane(tmux, "alternate_on") == "0")
        tmux.type("echo EXITED $?")
        tmux.wait_for("EXITED 0")
    finally:
        tmux.close()


@pytest.mark.parametrize("signo", [signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM])
def test_top_restores_the_terminal_on_a_signal(busy, scratch, signo):
    pid_file = os.path.join(scratch, "pid")
    tmux = Tmux("sh -c 'echo $$ > %s; exec %s top --pid %d --interval 0.3'" % (pid_file, pytap_path(), busy.pid))
    try:
        tmux.wait_for("%Own")
        os.kill(int(wait_for_file(pid_file)), signo)
        tmux.wait_for("EXITED")
        assert pane(tmux, "alternate_on") == "0", "left in the alternate screen"
        assert pane(tmux, "cursor_flag") == "1", "cursor left hidden"
    finally:
        tmux.close()


def test_top_does_not_draw_over_the_normal_screen_when_the_target_exits():
    code = "import time\nend = time.time() + 2.5\nwhile time.time() < end: sum(range(1000))\n"
    tmux = Tmux("%s top --interval 0.3 -- %s -c '%s'" % (pytap_path(), interp().path, code))
    try:
        tmux.wait_for("%Own")
        screen = tmux.wait_for("EXITED")
        assert "%Own" not in screen and "pytap top:" not in screen, screen
        assert "exited" in screen
    finally:
        tmux.close()


def test_top_into_a_closed_pipe_exits(busy):
    started = time.time()
    result = subprocess.run("%s top --pid %d --interval 0.2 | head -3" % (pytap_path(), busy.pid), shell=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert time.time() - started < 10
    assert len(result.stdout.decode().splitlines()) == 3
    assert result.stderr.decode() == ""


def test_top_once_into_a_full_disk_fails(busy):
    with open("/dev/full", "w") as full:
        result = subprocess.run([pytap_path(), "top", "--pid", str(busy.pid), "--once", "--interval", "0.3"],
                                stdout=full, stderr=subprocess.PIPE, timeout=20)
    assert result.returncode == 1
    assert "No space left on device" in result.stderr.decode()


# Item 11: launch mode.

def launched_pid(scratch):
    return int(wait_for_file(os.path.join(scratch, "child.pid")))


def pid_writer(scratch, body):
    return ("import os\nopen(%r, 'w').write(str(os.getpid()))\n" % os.path.join(scratch, "child.pid")) + body


def test_launch_mode_honours_duration_and_ends_the_command(scratch):
    started = time.time()
    result = run_pytap("sample", "-t", "1", "-f", "folded", "--", interp().path, "-c", pid_writer(scratch, BUSY), timeout=30)
    assert time.time() - started < 6
    assert result.returncode == 0, result.stderr.decode()
    assert "spin (<string>:" in result.stdout.decode()
    assert wait_until(lambda: not is_alive(launched_pid(scratch)), 5), "the command outlived pytap's --duration"


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_launch_mode_forwards_signals_and_passes_on_the_exit_status(scratch, signo):
    marker = os.path.join(scratch, "got")
    code = pid_writer(scratch, "import signal, sys\n"
                               "def on(signo, frame):\n"
                               "    open(%r, 'w').write(str(signo))\n"
                               "    sys.exit(42)\n"
                               "signal.signal(signal.SIGTERM, on)\n"
                               "signal.signal(signal.SIGINT, on)\n" % marker + BUSY)
    sampler = subprocess.Popen([pytap_path(), "sample", "-f", "folded", "--", interp().path, "-c", code],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    launched_pid(scratch)
    time.sleep(0.8)
    sampler.send_signal(signo)
    out, err = sampler.communicate(timeout=20)
    assert wait_for_file(marker, 5) == str(int(signo))
    assert sampler.returncode == 42, err.decode()
    assert "spin (<string>:" in out.decode()


def test_launch_mode_command_dies_with_pytap(scratch):
    sampler = subprocess.Popen([pytap_path(), "sample", "-f", "folded", "--", interp().path, "-c", pid_writer(scratch, BUSY)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = launched_pid(scratch)
    time.sleep(0.5)
    sampler.kill()
    sampler.wait()
    assert wait_until(lambda: not is_alive(child), 5), "the command was orphaned by SIGKILL of pytap"


def test_launch_mode_command_gets_default_signal_dispositions(scratch):
    status = os.path.join(scratch, "status")
    # The shell's builtins only: a forked grep would see the shell's mask during its vfork.
    copy = "while read -r line; do case $line in Sig*) echo \"$line\";; esac; done < /proc/$$/status > %s" % status
    result = run_pytap("sample", "-f", "folded", "--", "sh", "-c", "%s; exec %s -c 'pass'" % (copy, interp().path))
    assert result.returncode == 0, result.stderr.decode()
    masks = dict(line.split(":") for line in wait_for_file(status).splitlines())
    ignored = int(masks["SigIgn"], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)), "the command inherited pytap's ignored SIGPIPE"
    assert int(masks["SigBlk"], 16) == 0


def test_launch_mode_ctrl_c_while_waiting_says_interrupted():
    sampler = subprocess.Popen([pytap_path(), "sample", "--", "sh", "-c", "sleep 30"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    started = time.time()
    sampler.send_signal(signal.SIGINT)
    _, err = sampler.communicate(timeout=15)
    assert time.time() - started < 5
    err = err.decode()
    assert "interrupted while waiting for sh" in err and "within" not in err, err
    assert sampler.returncode == 130


@pytest.mark.parametrize("name", ["pyenv-2.7", "pyenv-3.12"])
def test_launch_mode_follows_each_python_the_command_runs(scratch, name):
    python = interp(name).path
    scripts = []
    for function in ("first_program", "second_program"):
        path = os.path.join(scratch, function + ".py")
        with open(path, "w") as f:
            f.write("import time\ndef %s():\n    end = time.time() + 1.0\n    while time.time() < end:\n"
                    "        sum(range(1000))\n%s()\n" % (function, function))
        scripts.append(path)
    result = run_pytap("sample", "--function", "-f", "folded", "--", "bash", "-c",
                       "%s %s; %s %s; exit 3" % (python, scripts[0], python, scripts[1]), timeout=60)
    assert result.returncode == 3, result.stderr.decode()
    counts = {}
    for line in result.stdout.decode().splitlines():
        stack, count = line.rsplit(" ", 1)
        for function in ("first_program", "second_program"):
            if function in stack:
                counts[function] = counts.get(function, 0) + int(count)
    assert counts.get("first_program", 0) > 30 and counts.get("second_program", 0) > 30, counts


@pytest.mark.parametrize("command", ["sample", "top"])
def test_launch_mode_passes_on_the_exit_status(command):
    code = "import sys\nsum(range(10**6))\nsys.exit(3)\n"
    extra = ["--interval", "0.2"] if command == "top" else ["-f", "folded"]
    result = run_pytap(command, *(extra + ["--", interp().path, "-c", code]))
    assert result.returncode == 3, result.stderr.decode()


# Item 12: control characters from the target are escaped in text outputs; JSON and SVG
# keep them, quoted.

EVIL = "evil\x1b]0;pwned\x07\x1b[2J"


@pytest.fixture
def evil_target(scratch):
    def start(name):
        path = os.path.join(scratch, EVIL + ".py")
        with open(path, "w") as f:
            f.write("import threading, time\n"
                    "def spin():\n    while True:\n        sum(range(1000))\n"
                    "t = threading.Thread(target=spin, name=%r)\nt.daemon = True\nt.start()\n"
                    "spin()\n" % ("worker" + EVIL))
        process = subprocess.Popen([interp(name).path, path], stdin=subprocess.DEVNULL)
        time.sleep(0.6)
        started.append(process)
        return process
    started = []
    yield start
    for process in started:
        process.kill()
        process.wait()


@pytest.mark.parametrize("name", ["pyenv-2.7", "pyenv-3.8", "pyenv-3.12", "pyenv-3.13"])
def test_control_characters_are_escaped_in_text_outputs(evil_target, name):
    target = evil_target(name)
    dump = run_pytap("dump", "--pid", target.pid)
    folded = run_pytap("sample", "--pid", target.pid, "-t", "0.5", "-f", "folded", "--threads")
    top = run_pytap("top", "--pid", target.pid, "--once", "--interval", "0.5")
    for result, separator in ((dump, ";"), (folded, ":"), (top, ";")):
        assert result.returncode == 0, result.stderr.decode()
        out = result.stdout.decode()
        assert "\x1b" not in out and "\x07" not in out, repr(out[:300])
        # Folded stacks also turn ";" (their frame separator) into ":".
        assert "evil\\x1b]0%spwned\\x07\\x1b[2J.py" % separator in out, out[:500]
    assert '"worker' + "evil\\x1b]0;pwned\\x07\\x1b[2J" + '"' in dump.stdout.decode()


@pytest.mark.parametrize("name", ["pyenv-3.12"])
def test_json_and_svg_keep_control_characters_quoted(evil_target, scratch, name):
    target = evil_target(name)
    dump = run_pytap("dump", "--pid", target.pid, "--json")
    assert dump.returncode == 0, dump.stderr.decode()
    files = set(f["file"] for t in json.loads(dump.stdout.decode())["threads"] for f in t["frames"])
    assert any(f.endswith(EVIL + ".py") for f in files), files
    speedscope = os.path.join(scratch, "p.speedscope.json")
    svg = os.path.join(scratch, "p.svg")
    for out in (speedscope, svg):
        result = run_pytap("sample", "--pid", target.pid, "-t", "0.5", "-o", out)
        assert result.returncode == 0, result.stderr.decode()
    with open(speedscope) as f:
        names = [frame.get("file") or "" for frame in json.load(f)["shared"]["frames"]]
    assert any(n.endswith(EVIL + ".py") for n in names), names
    with open(svg, "rb") as f:
        data = f.read()
    assert b"\x1b" not in data
    titles = [e.text or "" for e in ElementTree.fromstring(data).iter() if e.tag.endswith("title")]
    assert any("evil\ufffd]0;pwned\ufffd\ufffd[2J.py" in t for t in titles), titles[:5]


# Item 14: small ones.

def test_a_zombie_is_called_a_zombie():
    zombie = subprocess.Popen([interp().path, "-c", "pass"])
    assert wait_until(lambda: not is_alive(zombie.pid))
    try:
        for command in (["dump"], ["sample", "-t", "0.5"]):
            result = run_pytap(*(command + ["--pid", zombie.pid]))
            assert result.returncode == 5, result.stderr.decode()
            assert "process %d is a zombie" % zombie.pid in result.stderr.decode()
    finally:
        zombie.wait()


@pytest.mark.parametrize("command", ["dump", "sample", "top"])
def test_a_negative_pid_is_named(command):
    result = run_pytap(command, "--pid", "-5")
    assert result.returncode == 64
    assert result.stderr.decode().splitlines()[0] == "Error: --pid must be a positive process ID, not -5"


def test_a_duration_shorter_than_the_sampling_interval_is_kept(busy):
    result = run_pytap("sample", "--pid", busy.pid, "--rate", "1", "-t", "0.5", "-f", "folded")
    assert result.returncode == 0, result.stderr.decode()
    # The recording's own length (start-up of pytap aside, which load on the machine stretches).
    assert " thread in 0.5s (" in result.stderr.decode(), result.stderr.decode()


@pytest.mark.parametrize("value", ["1e300", "inf", "3601"])
def test_top_interval_is_bounded(value):
    result = run_pytap("top", "--pid", "1", "--interval", value)
    assert result.returncode == 64
    assert "--interval must be between 0.1 and 3600 seconds" in result.stderr.decode()


def capabilities(pid):
    with open("/proc/%s/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    return int(fields["CapPrm"], 16)


def test_permission_error_names_capabilities_the_target_has_and_pytap_lacks():
    """As root, PID 1 may hold capabilities root's shell lacks (a container's supervisor):
    root is then refused, and "run pytap as root" would be wrong advice."""
    ours = capabilities("self")
    target = next((pid for pid in [1] + sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
                   if os.path.exists("/proc/%d/status" % pid) and capabilities(pid) & ~ours), None)
    if os.geteuid() != 0 or target is None:
        pytest.skip("SKIPPED needs root and a process with capabilities this one lacks")
    result = run_pytap("dump", "--pid", target)
    err = result.stderr.decode()
    assert result.returncode == 3, err
    assert "the process has capabilities pytap lacks (cap_" in err, err
    assert "run pytap as root" not in err
