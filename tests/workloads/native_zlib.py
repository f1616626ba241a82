# -*- coding: utf-8 -*-
"""Spends its time in zlib.compress called from a Python function, on the main thread and
on N-1 worker threads (argv[1], default 1); prints "ready <pid>" and then a progress
counter file (argv[2], optional) grows while it runs. Runs on Python 2.7 and 3.6+.
For `dump --native` tests: the merged stack must show compress_chunk rootward of zlib's
deflate frames."""
from __future__ import print_function

import os
import sys
import threading
import zlib

DATA = os.urandom(1 << 16) * 4
progress = [0]


def compress_chunk():
    return zlib.compress(DATA, 9)


def worker_loop():
    while True:
        compress_chunk()
        progress[0] += 1


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    counter = sys.argv[2] if len(sys.argv) > 2 else None
    for _ in range(threads - 1):
        thread = threading.Thread(target=worker_loop)
        thread.daemon = True
        thread.start()
    print("ready", os.getpid())
    sys.stdout.flush()
    while True:
        compress_chunk()
        progress[0] += 1
        if counter:
            with open(counter, "w") as out:
                out.write(str(progress[0]))


if __name__ == "__main__":
    main()
