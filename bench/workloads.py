"""Workloads the benchmarks profile. Each runs until killed; run with `python workloads.py NAME`."""
import sys
import threading
import time


def nest(depth, leaf):
    """Calls `leaf` under `depth` Python frames."""
    if depth == 0:
        return leaf()
    return nest(depth - 1, leaf)


def sleeper():
    time.sleep(100000)


def spinner():
    total = 0
    while True:
        for i in range(1000):
            total += i


def ten_threads():
    """10 threads, stacks 20 deep: 8 sleeping, 2 computing."""
    for index in range(10):
        leaf = spinner if index < 2 else sleeper
        thread = threading.Thread(target=nest, args=(20, leaf), name="worker-%d" % index)
        thread.daemon = True
        thread.start()
    print("ready", flush=True)
    time.sleep(100000)


def compute(seconds=None):
    """A CPU-bound loop of small calls; prints how many iterations it did per second."""
    def leaf(x):
        return x * x + 1

    def middle(n):
        total = 0
        for i in range(n):
            total += leaf(i)
        return total

    print("ready", flush=True)
    start = time.time()
    iterations = 0
    report = start + 1
    while seconds is None or time.time() - start < seconds:
        nest(10, lambda: middle(200))
        iterations += 1
        now = time.time()
        if now >= report:
            print("rate %d" % iterations, flush=True)
            iterations = 0
            report = now + 1


def deep():
    """A CPU-bound loop 120 frames deep, calling many distinct functions."""
    namespace = {}
    for index in range(40):
        exec("def f%d(n):\n    return n + 1\n" % index, namespace)
    functions = [namespace["f%d" % i] for i in range(40)]

    def work():
        total = 0
        for i in range(2000):
            total += functions[i % 40](i)
        return total

    print("ready", flush=True)
    while True:
        nest(120, work)


if __name__ == "__main__":
    name = sys.argv[1]
    args = [float(a) for a in sys.argv[2:]]
    globals()[name](*args)
