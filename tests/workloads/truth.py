# -*- coding: utf-8 -*-
"""What the interpreter itself says about its threads: the truth pytap is checked against.

Runs on Python 2.7 and 3.6+. Imported by the workloads; never by pytap.
"""
from __future__ import print_function

import json
import os
import platform
import sys
import threading
import time

try:
    _get_ident = threading.get_ident
except AttributeError:  # Python 2.7
    import thread as _thread
    _get_ident = _thread.get_ident

PY2 = sys.version_info[0] == 2


def text(value):
    """A str for JSON: Python 2 code objects hold UTF-8 bytes."""
    if PY2 and isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def current_tid():
    """The OS thread id of the calling thread."""
    if hasattr(threading, "get_native_id"):
        return threading.get_native_id()
    import ctypes
    return ctypes.CDLL(None).syscall(186)  # SYS_gettid on x86_64


def frame_list(frame):
    frames = []
    while frame is not None:
        code = frame.f_code
        frames.append({
            "name": text(code.co_name),
            "qualname": text(getattr(code, "co_qualname", code.co_name)),
            "file": text(code.co_filename),
            "line": frame.f_lineno,
        })
        frame = frame.f_back
    return frames


def library_name():
    """The libpython this process runs from (its file name), None for a static build."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith("libpython"):
                return os.path.basename(path)
    return None


class Recorder(object):
    """Threads register their OS tid and role here when they start."""

    def __init__(self):
        self.tids = {_get_ident(): current_tid()}
        self.roles = {_get_ident(): "main"}
        self.lock = threading.Lock()

    def register(self, role):
        with self.lock:
            self.tids[_get_ident()] = current_tid()
            self.roles[_get_ident()] = role

    def snapshot(self, exclude):
        frames = sys._current_frames()
        names = dict((t.ident, t.name) for t in threading.enumerate())
        threads = []
        for ident, frame in frames.items():
            if ident in exclude:
                continue
            threads.append({
                "ident": ident,
                "tid": self.tids.get(ident),
                "name": text(names.get(ident)),
                "role": self.roles.get(ident),
                "frames": frame_list(frame),
            })
        threads.sort(key=lambda t: t["ident"])
        return threads

    def write_when_stable(self, path, extra=None, settle=0.3):
        """Writes the truth once two snapshots 100 ms apart agree (threads have parked)."""
        me = _get_ident()
        time.sleep(settle)
        previous = None
        for _ in range(100):
            current = self.snapshot(exclude=(me,))
            if current == previous:
                break
            previous = current
            time.sleep(0.1)
        truth = {
            "pid": os.getpid(),
            "version": platform.python_version(),
            "executable": sys.executable,
            "library": library_name(),
            "reporter_ident": me,
            "threads": current,
        }
        if extra:
            truth.update(extra)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(truth, f, indent=1)
        os.rename(tmp, path)
