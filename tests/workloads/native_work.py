"""Spends its CPU time in C code called from one Python function, for `sample --native`.

usage: python native_work.py TRUTH.json zlib|kernel|cxx|deep|clock SECONDS
zlib: `compress_forever` calls zlib.compress (libz's deflate) in a loop.
kernel: `read_forever` reads /proc/self/maps and urandom bytes in a loop (time in system calls).
cxx: `sort_forever` sorts float32 arrays with numpy (C++ sort templates, mangled symbols).
deep: `deep_compress_forever` runs zlib 40 calls deep, each through a C call (`map`), so the
native stack goes on far past the 16 KiB the BPF program copies.
clock: `read_clocks_forever` calls time.time and time.monotonic in a loop: clock_gettime,
which runs in the vDSO (kernel code mapped into the process, with no file behind it).
Writes {"pid", "function", "thread_time"} to TRUTH.json once running, then runs SECONDS.
"""
import json
import os
import sys
import time
import zlib

clock = getattr(time, "monotonic", time.time)


def compress_forever(until):
    data = os.urandom(1 << 15) * 4
    while clock() < until:
        zlib.compress(data, 9)


def deep_compress_forever(until, depth=40):
    if depth == 0:
        compress_forever(until)
    else:
        list(map(lambda d: deep_compress_forever(until, d), [depth - 1]))


def read_forever(until):
    while clock() < until:
        with open("/proc/self/maps", "rb") as f:
            f.read()
        os.urandom(1 << 16)


def read_clocks_forever(until):
    while clock() < until:
        for _ in range(100):
            time.time()
            clock()


def sort_forever(until):
    import numpy
    data = numpy.random.rand(1 << 18).astype(numpy.float32)
    while clock() < until:
        numpy.sort(data)


def main():
    truth_path, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    function = {"zlib": compress_forever, "kernel": read_forever, "cxx": sort_forever,
                "deep": deep_compress_forever, "clock": read_clocks_forever}[mode]
    with open(truth_path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "function": function.__name__}, f)
    os.rename(truth_path + ".tmp", truth_path)
    function(clock() + seconds)


if __name__ == "__main__":
    main()
