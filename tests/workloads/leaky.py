"""memtrace's workload: churns short-lived allocations in churn() all the time; when the
file TRUTH.go appears, leak_here() keeps COUNT bytearrays of SIZE bytes in a global list,
then TRUTH is written (what was leaked, from where, as JSON) and the churn goes on.

Usage: leaky.py TRUTH [COUNT [SIZE [KIND]]]: KIND "bytearray" (the default) leaks
bytearray(SIZE)s, "object" instances of the class Leaked (a GC type with an attribute
dict: managed, with a pre-header, on 3.11+). The loop's speed (churn rounds per second, measured
each 0.5 s) is appended to TRUTH.speed as "time rounds_per_second" lines; where tracemalloc
exists, whether it is tracing is written to TRUTH.tracing at the same pace ("0" or "1"), and
LEAKY_TRACEMALLOC=N in the environment starts it (N frames) before the loop.
"""
import json
import os
import sys
import time

try:
    import _tracemalloc
except ImportError:  # 2.7, 3.3
    _tracemalloc = None

kept = []


class Leaked(object):
    def __init__(self, number):
        self.number = number


def leak_here(count, size, kind):
    for number in range(count):
        kept.append(bytearray(size) if kind == "bytearray" else Leaked(number))


def churn():
    # Temporaries of several kinds, all freed before returning.
    scratch = [str(i) * 3 for i in range(50)]
    table = dict((s, len(s)) for s in scratch)
    return len(table)


def main():
    done = sys.argv[1]
    go = done + ".go"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    kind = sys.argv[4] if len(sys.argv) > 4 else "bytearray"
    if os.environ.get("LEAKY_TRACEMALLOC"):
        _tracemalloc.start(int(os.environ["LEAKY_TRACEMALLOC"]))
    leaked = False
    rounds = 0
    window = time.time()
    while True:
        churn()
        rounds += 1
        now = time.time()
        if now - window >= 0.5:
            with open(done + ".speed", "a") as out:
                out.write("%f %f\n" % (now, rounds / (now - window)))
            rounds = 0
            window = now
            if _tracemalloc is not None:
                with open(done + ".tracing.tmp", "w") as out:
                    out.write("%d" % _tracemalloc.is_tracing())
                os.rename(done + ".tracing.tmp", done + ".tracing")
            if not leaked and os.path.exists(go):
                leak_here(count, size, kind)
                leaked = True
                with open(done + ".tmp", "w") as out:
                    json.dump({"count": count, "size": size, "file": os.path.abspath(__file__),
                               "line": leak_here.__code__.co_firstlineno + 2}, out)
                os.rename(done + ".tmp", done)


if __name__ == "__main__":
    main()
