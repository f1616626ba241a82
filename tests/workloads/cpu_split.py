# -*- coding: utf-8 -*-
"""Splits CPU time between two functions in a known ratio, measured by the thread itself.

usage: python cpu_split.py TRUTH.json SECONDS [SHARE_A]
Runs on Python 2.7 and 3.6+. Alternates work_a and work_b in chunks of random length
(so a fixed sampling rate cannot alias with them) until SECONDS have passed, timing each
call with the thread's CPU clock, then writes the measured split and where the two
functions' lines are.
"""
from __future__ import print_function

import dis
import json
import os
import random
import sys
import time

try:
    thread_time = time.thread_time
except AttributeError:  # Python 2.7: clock_gettime(CLOCK_THREAD_CPUTIME_ID) through ctypes
    import ctypes

    class _Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    _clock_gettime = ctypes.CDLL(None).clock_gettime

    def thread_time():
        ts = _Timespec()
        _clock_gettime(3, ctypes.byref(ts))
        return ts.tv_sec + ts.tv_nsec * 1e-9

try:
    loop_range = xrange
except NameError:
    loop_range = range


def work_a(n):
    total = 0
    for i in loop_range(n):
        total += i * i
    return total


def work_b(n):
    total = 0
    for i in loop_range(n):
        total += i * i
    return total


def describe(function):
    code = function.__code__
    return {
        "name": code.co_name,
        "qualname": getattr(code, "co_qualname", code.co_name),
        "file": code.co_filename,
        "first_line": code.co_firstlineno,
        "lines": sorted(set(line for _, line in dis.findlinestarts(code) if line is not None)),
    }


def main():
    truth_path, seconds = sys.argv[1], float(sys.argv[2])
    share_a = float(sys.argv[3]) if len(sys.argv) > 3 else 0.3
    rng = random.Random(20161001)
    # Iterations per millisecond, so chunks last 0.3-3 ms whatever the interpreter's speed.
    start = thread_time()
    work_a(20000)
    per_ms = max(1, int(20000 / max(1e-6, (thread_time() - start) * 1000)))
    spent_a = spent_b = 0.0
    deadline = time.time() + seconds
    while time.time() < deadline:
        chunk = rng.uniform(0.3, 3.0) * per_ms
        t0 = thread_time()
        work_a(int(chunk * share_a / (1 - share_a)))
        t1 = thread_time()
        work_b(int(chunk))
        t2 = thread_time()
        spent_a += t1 - t0
        spent_b += t2 - t1
    truth = {
        "pid": os.getpid(),
        "spent_a": spent_a,
        "spent_b": spent_b,
        "share_a": spent_a / (spent_a + spent_b),
        "work_a": describe(work_a),
        "work_b": describe(work_b),
        "main": describe(main),
        # Every Python function of this file a sample may show.
        "functions": [describe(f) for f in (work_a, work_b, main, thread_time, describe) if hasattr(f, "__code__")],
    }
    with open(truth_path + ".tmp", "w") as f:
        json.dump(truth, f)
    os.rename(truth_path + ".tmp", truth_path)


if __name__ == "__main__":
    main()
