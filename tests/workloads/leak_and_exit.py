"""memtrace --via tracemalloc in launch mode: waits (up to 20 s) until tracemalloc traces,
keeps COUNT bytearrays of SIZE bytes from leak_here(), and exits.

Usage: leak_and_exit.py COUNT SIZE
"""
import sys
import time

import _tracemalloc

kept = []


def leak_here(count, size):
    for _ in range(count):
        kept.append(bytearray(size))


deadline = time.time() + 20
while not _tracemalloc.is_tracing() and time.time() < deadline:
    time.sleep(0.01)
leak_here(int(sys.argv[1]), int(sys.argv[2]))
