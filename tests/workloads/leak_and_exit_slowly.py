"""memtrace --via tracemalloc in launch mode: like leak_and_exit.py, but its own exit hook,
registered before pytap's and so run after it, runs Python for SECONDS more: pytap's next
snapshot runs while the process exits, after its exit hook ended the trace.

Usage: leak_and_exit_slowly.py COUNT SIZE SECONDS
"""
import atexit
import sys
import time

import _tracemalloc

kept = []


def leak_here(count, size):
    for _ in range(count):
        kept.append(bytearray(size))


def linger(seconds):
    end = time.monotonic() + seconds
    total = 0
    while time.monotonic() < end:
        total += sum(range(100))  # Python code: the eval breaker is checked


atexit.register(linger, float(sys.argv[3]))
deadline = time.time() + 20
while not _tracemalloc.is_tracing() and time.time() < deadline:
    time.sleep(0.01)
leak_here(int(sys.argv[1]), int(sys.argv[2]))
