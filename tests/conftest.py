"""Fixtures for pytap's tests against real interpreters.

The pytap binary comes from $PYTAP_BIN or .build/release/pytap (scripts/test builds it).
Interpreters that are absent are skipped with their reason, and listed again at the end
of the run, so a missing one is never passed silently. In CI (CI=true in the environment)
a test that needs an absent interpreter fails instead: a run there cannot pass empty.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interpreters  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIPPED = []


def pytap_path():
    path = os.environ.get("PYTAP_BIN") or os.path.join(ROOT, ".build", "release", "pytap")
    if not os.access(path, os.X_OK):
        pytest.exit("pytap binary not found at %s: build it first (scripts/test does)" % path, returncode=2)
    return path


@pytest.fixture(scope="session")
def pytap():
    return pytap_path()


def run_pytap(*args, **kwargs):
    """Runs pytap; returns CompletedProcess with text stdout/stderr."""
    timeout = kwargs.pop("timeout", 60)
    return subprocess.run([pytap_path()] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, **kwargs)


def interpreter_params(names=None, debug=False):
    """pytest params over the matrix (with `debug`, its debug builds too); an absent
    interpreter becomes a loud skip."""
    params = []
    for interp in interpreters.ALL + (interpreters.DEBUG if debug else []):
        if names is not None and interp.name not in names:
            continue
        reason = interp.missing_reason()
        marks = [pytest.mark.missing_interpreter(reason)] if reason else []
        if reason and reason not in SKIPPED:
            SKIPPED.append(reason)
        params.append(pytest.param(interp, id=interp.name, marks=marks))
    return params


def in_ci():
    return os.environ.get("CI", "").lower() == "true"


def pytest_configure(config):
    config.addinivalue_line("markers", "missing_interpreter(reason): the interpreter the test needs is absent")


def skip_or_fail(reason):
    """Something a test needs is absent: a loud skip here, a failure in CI."""
    if reason not in SKIPPED:
        SKIPPED.append(reason)
    if in_ci():
        pytest.fail("missing in CI (CI=true): " + reason, pytrace=False)
    pytest.skip("SKIPPED " + reason)


def require_interpreter(name):
    """The interpreter of the matrix called `name`, or skip_or_fail when it is absent."""
    interp = interpreters.BY_NAME[name]
    reason = interp.missing_reason()
    if reason:
        skip_or_fail(reason)
    return interp


def pytest_runtest_setup(item):
    marker = item.get_closest_marker("missing_interpreter")
    if marker is not None:
        skip_or_fail(marker.args[0])


class Workload(object):
    """A workload process started on an interpreter, with the truth it writes."""

    def __init__(self, interp, script, *args, **kwargs):
        self.interp = interp
        self.own_dir, self.host_dir = interp.stage()
        self.truth_own = os.path.join(self.own_dir, "truth.json")
        self.truth_host = os.path.join(self.host_dir, "truth.json")
        self.log = open(os.path.join(self.host_dir, "workload.log"), "w")
        # Options for the interpreter itself (-X ...) go before the script.
        argv = list(kwargs.pop("interpreter_args", [])) + [os.path.join(self.own_dir, script), self.truth_own] + [str(a) for a in args]
        self.process = interp.popen(*argv, stdout=self.log, stderr=subprocess.STDOUT, **kwargs)
        self._pid = None

    @property
    def pid(self):
        """The interpreter's PID (for a chroot target, `chroot` execs it: same PID)."""
        return self.process.pid

    def truth(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(self.truth_host):
                with open(self.truth_host) as f:
                    return json.load(f)
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.log.flush()
        with open(os.path.join(self.host_dir, "workload.log")) as f:
            log = f.read()
        raise AssertionError("%s: workload wrote no truth (exit %s): %s" % (self.interp, self.process.poll(), log[-2000:]))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.log.close()


@pytest.fixture
def workload():
    started = []

    def start(interp, script, *args, **kwargs):
        w = Workload(interp, script, *args, **kwargs)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def pytest_terminal_summary(terminalreporter):
    if SKIPPED:
        title = "missing in CI (those tests FAILED)" if in_ci() else "interpreters NOT tested (skipped)"
        terminalreporter.section(title, sep="!", red=True, bold=True)
        for reason in SKIPPED:
            terminalreporter.write_line(("MISSING " if in_ci() else "SKIPPED ") + reason, red=True)
    else:
        terminalreporter.write_line("all %d interpreters of the matrix were present and tested" % len(interpreters.ALL), green=True)
