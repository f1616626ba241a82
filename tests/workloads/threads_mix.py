# -*- coding: utf-8 -*-
"""Threads in different states, for `pytap sample --idle` and `--gil`.

usage: python threads_mix.py TRUTH.json
- "spinner" runs Python code (needs the GIL);
- "hasher" hashes large buffers in C with the GIL released (on a CPU, without the GIL);
- "sleeper" sleeps (off CPU).
Writes its pid and the three functions once all threads run, then runs until killed.
"""
from __future__ import print_function

import hashlib
import json
import os
import sys
import threading
import time


def spinner_loop():
    total = 0
    while True:
        for i in range(1000):
            total += i


def hasher_loop():
    data = b"x" * (8 << 20)
    while True:
        hashlib.sha256(data).digest()


def sleeper_loop():
    while True:
        time.sleep(10)


def main():
    for target in (spinner_loop, hasher_loop, sleeper_loop):
        thread = threading.Thread(target=target, name=target.__name__)
        thread.daemon = True
        thread.start()
    time.sleep(0.5)
    with open(sys.argv[1] + ".tmp", "w") as f:
        json.dump({"pid": os.getpid()}, f)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        time.sleep(10)


if __name__ == "__main__":
    main()
