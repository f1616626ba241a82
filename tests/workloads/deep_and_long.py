# -*- coding: utf-8 -*-
"""Parks threads whose stacks exceed pytap's caps, then writes the truth.

usage: python deep_and_long.py TRUTH.json [DEPTH]
Runs on Python 2.7 and 3.6+. Threads: "deep" recurses DEPTH (default 5000) frames deep,
"long-name" sleeps in a function with a 2,000-character name, "long-file" in a function
of a file whose name has 5,000 characters. See truth.py for what is written.
"""
from __future__ import print_function

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from truth import Recorder  # noqa: E402

DEPTH = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
LONG_NAME = "long_" + "n" * 1995
LONG_FILE = "/nonexistent/" + "f" * 4985 + ".py"

recorder = Recorder()
sys.setrecursionlimit(DEPTH + 1000)
threading.stack_size(256 << 20)  # up to 3.10 each Python call uses C stack too


def recurse(n):
    if n <= 1:
        time.sleep(100000)
    return recurse(n - 1)


def make(source, filename, name):
    namespace = {"time": time}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


in_long_name = make("def %s():\n    time.sleep(100000)\n" % LONG_NAME, os.path.join(HERE, "generated.py"), LONG_NAME)
in_long_file = make("def in_long_file():\n    time.sleep(100000)\n", LONG_FILE, "in_long_file")


def start(role, target):
    event = threading.Event()

    def run():
        recorder.register(role)
        event.set()
        target()

    thread = threading.Thread(target=run, name=role)
    thread.daemon = True
    thread.start()
    event.wait()


start("deep", lambda: recurse(DEPTH))
start("long-name", in_long_name)
start("long-file", in_long_file)
recorder.write_when_stable(sys.argv[1], extra={"depth": DEPTH, "long_name": LONG_NAME, "long_file": LONG_FILE})
time.sleep(100000)
