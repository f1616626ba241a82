"""The interpreter matrix pytap is tested against: 13 CPython builds, and 4 debug builds.

Each is called by its real path (never a pyenv shim). Debian sid's run inside the chroot
made by scripts/setup-matrix.sh, so their files are only reachable through
/proc/PID/root, like a container's.
"""
import os
import shutil
import subprocess
import tempfile

PYENV = "/root/.pyenv/versions"
SID_CHROOT = os.environ.get("PYTAP_SID_CHROOT", "/var/lib/pytap/sid")
WORKLOADS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads")


class Interpreter(object):
    def __init__(self, name, path, minor, chroot=None, static=False):
        self.name = name          # test id, e.g. "pyenv-3.12"
        self.path = path          # path as the interpreter's own root sees it
        self.minor = minor        # (3, 12)
        self.chroot = chroot      # None, or the chroot directory
        self.static = static

    def __repr__(self):
        return self.name

    @property
    def host_path(self):
        return (self.chroot or "") + self.path

    def missing_reason(self):
        if not os.path.exists(self.host_path):
            return "%s: %s is not installed (run scripts/setup-matrix.sh)" % (self.name, self.host_path)
        return None

    def stage(self, files=None):
        """Copies the workloads where the interpreter can see them; returns (dir as the
        interpreter sees it, dir on the host)."""
        base = os.path.join(self.chroot, "tmp") if self.chroot else None
        host_dir = tempfile.mkdtemp(prefix="pytap-tests-", dir=base)
        for name in os.listdir(WORKLOADS):
            src = os.path.join(WORKLOADS, name)
            if os.path.isfile(src) and (files is None or name in files or name.endswith(".py")):
                shutil.copy(src, host_dir)
        own_dir = host_dir[len(self.chroot):] if self.chroot else host_dir
        return own_dir, host_dir

    def command(self, *args):
        """The argv that runs the interpreter with `args` (paths as the interpreter sees them)."""
        argv = [self.path] + [str(a) for a in args]
        if self.chroot:
            return ["chroot", self.chroot] + argv
        return argv

    def popen(self, *args, **kwargs):
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.command(*args), **kwargs)


def _pyenv(version):
    minor = tuple(int(x) for x in version.split(".")[:2])
    name = "python%d.%d" % minor
    return Interpreter("pyenv-%d.%d" % minor, os.path.join(PYENV, version, "bin", name), minor)


ALL = [
    _pyenv("2.7.18"),
    _pyenv("3.6.15"),
    _pyenv("3.7.16"),
    _pyenv("3.8.18"),
    _pyenv("3.9.18"),
    _pyenv("3.10.13"),
    _pyenv("3.11.7"),
    _pyenv("3.12.1"),
    _pyenv("3.13.0"),
    Interpreter("debian-3.11-static", "/usr/bin/python3.11", (3, 11), static=True),
    Interpreter("sid-3.13", "/usr/bin/python3.13", (3, 13), chroot=SID_CHROOT, static=True),
    Interpreter("sid-3.14", "/usr/bin/python3.14", (3, 14), chroot=SID_CHROOT, static=True),
    Interpreter("sid-3.15", "/usr/bin/python3.15", (3, 15), chroot=SID_CHROOT, static=True),
]

# --with-pydebug builds (Debian's python3.X-dbg): other allocator, extra checks, same object
# layouts (the DWARF checks of Tests/PyTapTests prove it). dump, sample and their hardening
# tests run on them too.
DEBUG = [
    Interpreter("debian-3.11d", "/usr/bin/python3.11d", (3, 11), static=True),
    Interpreter("sid-3.13d", "/usr/bin/python3.13d", (3, 13), chroot=SID_CHROOT, static=True),
    Interpreter("sid-3.14d", "/usr/bin/python3.14d", (3, 14), chroot=SID_CHROOT, static=True),
    Interpreter("sid-3.15d", "/usr/bin/python3.15d", (3, 15), chroot=SID_CHROOT, static=True),
]

BY_NAME = dict((i.name, i) for i in ALL + DEBUG)


def present():
    return [i for i in ALL if i.missing_reason() is None]
