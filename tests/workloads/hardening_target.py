# -*- coding: utf-8 -*-
"""Targets for the hardening tests (issue 6): odd process shapes pytap must read right.

usage: python hardening_target.py TRUTH.json MODE [ARG]
- spin-sleep: a "spinner" thread on the CPU, a "sleeper" thread and the main thread asleep
  (run in its own PID namespace by the namespace test);
- churn: the same, plus a thread starting and stopping threads at about 1 kHz;
- many-threads N: the same, plus N threads asleep;
- subinterpreter: a "runner" thread inside run_string, spinning in a subinterpreter;
- exec PROGRAM: spins in before_exec for 2 s, then execs PROGRAM ("python" runs this
  file again in mode after-exec, spinning in after_exec);
Writes the truth (pid and tids as the process sees them) once all threads run, then runs
until killed.
"""
from __future__ import print_function

import json
import os
import sys
import threading
import time

from truth import _get_ident, current_tid


def spinner_loop(ready):
    ready.append((_get_ident(), current_tid()))
    total = 0
    while True:
        for i in range(1000):
            total += i


def sleeper_loop(ready):
    ready.append((_get_ident(), current_tid()))
    while True:
        time.sleep(10)


def churn_loop(ready):
    ready.append((_get_ident(), current_tid()))
    while True:
        thread = threading.Thread(target=time.sleep, args=(0.0005,))
        thread.start()
        thread.join()


def start(name, target, ready):
    thread = threading.Thread(target=target, name=name, args=(ready,))
    thread.daemon = True
    thread.start()
    while len(ready) < 1:
        time.sleep(0.01)
    ident, tid = ready.pop()
    return {"name": name, "ident": ident, "tid": tid}


def write_truth(path, threads, **extra):
    truth = {"pid": os.getpid(), "threads": threads}
    truth.update(extra)
    with open(path + ".tmp", "w") as f:
        json.dump(truth, f)
    os.rename(path + ".tmp", path)


SUBINTERPRETER_CODE = """
def spin_in_subinterpreter():
    total = 0
    while True:
        total += 1
spin_in_subinterpreter()
"""


def run_in_subinterpreter(ready):
    try:
        import _interpreters as interpreters  # 3.13+
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.12
    interp = interpreters.create()
    ready.append((_get_ident(), current_tid()))
    run = getattr(interpreters, "run_string", None) or getattr(interpreters, "exec")
    run(interp, SUBINTERPRETER_CODE)


def before_exec(seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        pass


def after_exec():
    while True:
        pass


def main():
    path, mode = sys.argv[1], sys.argv[2]
    ready = []
    main_thread = {"name": "MainThread", "ident": _get_ident(), "tid": current_tid()}
    if mode in ("spin-sleep", "churn", "many-threads"):
        threads = [main_thread, start("spinner", spinner_loop, ready), start("sleeper", sleeper_loop, ready)]
        if mode == "churn":
            threads.append(start("churner", churn_loop, ready))
        if mode == "many-threads":
            threading.stack_size(256 << 10)
            for index in range(int(sys.argv[3])):
                thread = threading.Thread(target=time.sleep, args=(3600,), name="idle-%d" % index)
                thread.daemon = True
                thread.start()
        time.sleep(0.3)
        write_truth(path, threads)
    elif mode == "subinterpreter":
        runner = start("runner", run_in_subinterpreter, ready)
        time.sleep(0.3)
        write_truth(path, [main_thread, runner])
    elif mode == "exec":
        write_truth(path, [main_thread])
        before_exec(2.0)
        if sys.argv[3] == "python":
            os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), path + ".after", "after-exec"])
        os.execv(sys.argv[3], sys.argv[3:])
    elif mode == "after-exec":
        write_truth(path, [main_thread])
        after_exec()
    while True:
        time.sleep(10)


if __name__ == "__main__":
    main()
