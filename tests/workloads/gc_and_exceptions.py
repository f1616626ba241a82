# -*- coding: utf-8 -*-
"""Time in the cyclic garbage collector, or in exception handlers, measured by the thread itself.

usage: python gc_and_exceptions.py TRUTH.json MODE SECONDS
MODE:
  gc          builds reference cycles (make_cycles) and collects them (collect_cycles:
              gc.collect()); automatic collections are kept out by a high threshold, so
              every collection is one the thread timed
  nogc        gc.disable(), then builds the same structures without cycles: no collection
  exceptions  alternates handle_error (spins inside an `except` block) and normal_work
              (the same loop outside any handler)
Runs on Python 2.7 and 3.6+. Writes TRUTH.json (pid, the functions and where they are, and
whether sys.exc_info() holds an exception in each part) once started, then TRUTH.json.done with the thread CPU time of each part when SECONDS
have passed.
"""
from __future__ import print_function

import gc
import json
import os
import sys
import time

from cpu_split import describe, loop_range, thread_time  # the thread CPU clock on 2.7 too

# Python 2 keeps an exception handled by a frame (cpu_split's import fallbacks) as the thread's
# current one until that frame returns, for every function it calls: forget it.
if hasattr(sys, "exc_clear"):
    sys.exc_clear()


class Node(object):
    def __init__(self):
        self.other = None
        self.payload = [1, 2, 3]


def make_cycles(count, cyclic):
    kept = []
    for _ in loop_range(count):
        a, b = Node(), Node()
        a.other = b
        if cyclic:
            b.other = a
        kept.append(a)
    return kept


def collect_cycles():
    return gc.collect()


def handle_error(n):
    total = 0
    try:
        raise ValueError(n)
    except ValueError:
        if n == 0:  # the probe: what sys.exc_info() says here
            return sys.exc_info()[0] is not None
        for i in loop_range(n):
            total += i * i
    return total


def normal_work(n):
    if n == 0:
        return sys.exc_info()[0] is not None
    total = 0
    for i in loop_range(n):
        total += i * i
    return total


def write(path, truth):
    with open(path + ".tmp", "w") as f:
        json.dump(truth, f)
    os.rename(path + ".tmp", path)


def main():
    truth_path, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    spent = {}

    def timed(name, function, *args):
        t0 = thread_time()
        function(*args)
        spent[name] = spent.get(name, 0.0) + thread_time() - t0

    if mode == "gc":
        gc.set_threshold(10 ** 8, 10 ** 8, 10 ** 8)
    elif mode == "nogc":
        gc.disable()
    # What sys.exc_info() says where each part runs: the truth for the exception mode.
    handled = {"normal_work": normal_work(0), "handle_error": handle_error(0)}
    write(truth_path, {
        "pid": os.getpid(),
        "handled": handled,
        "functions": dict((f.__name__, describe(f)) for f in (make_cycles, collect_cycles, handle_error, normal_work, main)),
    })
    deadline = time.time() + seconds
    while time.time() < deadline:
        if mode == "exceptions":
            timed("handle_error", handle_error, 200000)
            timed("normal_work", normal_work, 200000)
        else:
            timed("make_cycles", make_cycles, 20000, mode == "gc")
            if mode == "gc":
                timed("collect_cycles", collect_cycles)
    write(truth_path + ".done", {"spent": spent})


if __name__ == "__main__":
    main()
