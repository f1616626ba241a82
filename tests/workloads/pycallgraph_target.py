"""A known tree of Python calls under `trigger_root`, every 50 ms, for `pytap py-callgraph`:
recursion, a generator, an exception caught two levels up, a method and a lambda; also
a function whose exception C code swallows (hasattr on a property that raises), called
twice from one place, and a generator resumed by throw().

usage: python pycallgraph_target.py TRUTH.json SECONDS [reinstrument|thread|new-threads]
Writes {"pid", "calls"} to TRUTH.json once running: "calls" is the sequence of (event,
function) pairs one call of trigger_root makes, recorded by the interpreter itself with
sys.setprofile (then switched off). Appends "monotonic_start duration" (seconds) of every
later call of trigger_root to TRUTH.json.durations: the clock is CLOCK_MONOTONIC where
the interpreter has time.monotonic (3.3+; pytap's times are on that clock too).
With "reinstrument", a profiler is set and removed before each call: on 3.12+ that makes
every code object re-instrument itself at its next RESUME (which runs RESUME again).
With "thread", the calls run on a second thread (its tid is "worker_tid" in TRUTH.json)
while the main thread calls leaf() every millisecond.
With "new-threads", each call runs on a thread of its own: a new thread every ~60 ms calls
leaf(), sleeps 20 ms, then calls trigger_root 10 times, 2 ms apart; its lines in
TRUTH.json.durations carry its tid as a third column.
"""
import json
import os
import sys
import time

clock = getattr(time, "monotonic", time.time)


def leaf(x):
    return x + 1


def numbers(n):
    for i in range(n):
        yield leaf(i)


def fails():
    raise ValueError("expected")


def passes_it_on():
    fails()


def catches():
    try:
        passes_it_on()
    except ValueError:
        return -1


def countdown(n):
    return 0 if n == 0 else countdown(n - 1)


class Shape(object):
    def area(self):
        return leaf(2)


class Lazy(object):
    @property
    def missing(self):
        raise AttributeError("missing")


def probes_twice():
    lazy = Lazy()
    return hasattr(lazy, "missing") + hasattr(lazy, "missing")


def guarded():
    try:
        yield 1
    except KeyError:
        yield leaf(5)


def throws_into():
    generator = guarded()
    next(generator)
    value = generator.throw(KeyError)
    for _ in generator:
        pass
    return value


def trigger_root():
    total = catches()
    for value in numbers(2):
        total += value
    total += countdown(2)
    total += Shape().area()
    square = lambda v: v * v
    total += probes_twice() + throws_into()
    return total + square(3)


def recorded_calls():
    calls = []

    def profile(frame, event, arg):
        if event in ("call", "return"):
            calls.append((event, frame.f_code.co_name))
    sys.setprofile(profile)
    trigger_root()
    sys.setprofile(None)
    # Drop the profiler's own return from trigger_root's caller frame (this function).
    return [c for c in calls if c[1] != "recorded_calls"]


def ignore(frame, event, arg):
    pass


def busy(until):
    """Python calls on another thread meanwhile (every ms)."""
    while clock() < until:
        leaf(1)
        time.sleep(0.001)


def loop(truth_path, until, reinstrument):
    with open(truth_path + ".durations", "w") as log:
        while clock() < until:
            if reinstrument:
                sys.setprofile(ignore)
                sys.setprofile(None)
            began = clock()
            trigger_root()
            log.write("%.6f %.9f\n" % (began, clock() - began))
            log.flush()
            time.sleep(0.05)


def short_lived_threads(truth_path, until):
    """A thread per batch of trigger_root calls, each started after the last ended."""
    import threading
    with open(truth_path + ".durations", "w") as log:
        def worker():
            tid = open("/proc/thread-self/stat").read().split()[0]
            leaf(0)
            time.sleep(0.02)
            for _ in range(10):
                began = clock()
                trigger_root()
                log.write("%.6f %.9f %s\n" % (began, clock() - began, tid))
                log.flush()
                time.sleep(0.002)
        while clock() < until:
            thread = threading.Thread(target=worker)
            thread.start()
            thread.join()
            time.sleep(0.02)


def main():
    truth_path, seconds = sys.argv[1], float(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else None
    truth = {"pid": os.getpid(), "calls": recorded_calls()}
    until = clock() + seconds
    if mode == "thread":
        # trigger_root on a second thread, while the main thread makes calls of its own.
        import threading
        ready = threading.Event()
        tids = []

        def worker():
            tids.append(open("/proc/thread-self/stat").read().split()[0])
            ready.set()
            loop(truth_path, until, False)
        threading.Thread(target=worker, name="worker").start()
        ready.wait()
        truth["worker_tid"] = int(tids[0])
    with open(truth_path + ".tmp", "w") as f:
        json.dump(truth, f)
    os.rename(truth_path + ".tmp", truth_path)
    if mode == "thread":
        busy(until)
    elif mode == "new-threads":
        short_lived_threads(truth_path, until)
    else:
        loop(truth_path, until, mode == "reinstrument")


if __name__ == "__main__":
    main()
