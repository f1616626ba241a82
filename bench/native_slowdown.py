"""Target slowdown under native sampling: `pytap sample --native` against `py-spy record
--native`, at 100 Hz and 1000 Hz, side by side in one run.

usage: python bench/native_slowdown.py [PYTHON] [--window S] [--repeat N]
The target calls zlib.compress from a Python function in a loop and logs its iteration
count every 50 ms. Each configuration samples it for a window; its throughput in the
window's middle (after the sampler has attached) is compared with the mean of the
sampler-free windows interleaved with them. Run on a quiet machine: the samplers' own
CPU use competes with the target on a small one, which is part of what is measured.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import DEFAULT_PYTHON, pytap_binary

TARGET = r'''
import sys, time, zlib
data = bytes(range(256)) * 16
log = open(sys.argv[1], "w", buffering=1)
def work():
    n = 0
    next_log = time.monotonic()
    while True:
        zlib.compress(data, 6)
        n += 1
        if n % 64 == 0 and time.monotonic() >= next_log:
            log.write("%.6f %.6f %d\n" % (time.monotonic(), time.thread_time(), n))
            next_log += 0.05
work()
'''


def rate(log_path, start, end):
    """Iterations per wall second and per second of the target's own CPU time (which
    includes the time the kernel spends in it for the sampler)."""
    points = []
    with open(log_path) as f:
        for line in f:
            t, cpu, n = line.split()
            t = float(t)
            if start <= t <= end:
                points.append((t, float(cpu), int(n)))
    if len(points) < 2:
        return None
    (t0, c0, n0), (t1, c1, n1) = points[0], points[-1]
    return (n1 - n0) / (t1 - t0), (n1 - n0) / max(1e-9, c1 - c0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("python", nargs="?", default=DEFAULT_PYTHON)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--py-spy", default="/var/lib/pytap/venv/bin/py-spy")
    args = parser.parse_args()
    pytap = pytap_binary()
    work = tempfile.mkdtemp(prefix="pytap-native-bench-")
    script, log = os.path.join(work, "target.py"), os.path.join(work, "log")
    with open(script, "w") as f:
        f.write(TARGET)
    target = subprocess.Popen([args.python, script, log])
    time.sleep(1.5)
    configs = [("baseline", None)]
    for hz in (100, 1000):
        configs.append(("pytap --native %d Hz" % hz,
                        [pytap, "sample", "-x", str(target.pid), "-t", str(args.window), "--native", "-r", str(hz), "-f", "folded", "-o", "/dev/null"]))
        configs.append(("py-spy --native %d Hz" % hz,
                        [args.py_spy, "record", "--native", "-p", str(target.pid), "-d", str(int(args.window)), "-r", str(hz),
                         "-f", "raw", "-o", os.devnull]))
    results = {name: [] for name, _ in configs}
    summaries = {}
    try:
        for _ in range(args.repeat):
            for name, argv in configs:
                start = time.monotonic()
                if argv:
                    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    summaries[name] = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
                else:
                    time.sleep(args.window)
                end = time.monotonic()
                # The middle of the window: the sampler attached, not yet detaching.
                measured = rate(log, start + 1.5, min(end, start + args.window) - 0.3)
                if measured:
                    results[name].append(measured)
    finally:
        target.kill()
        target.wait()
    base_wall = statistics.mean(v[0] for v in results["baseline"])
    base_cpu = statistics.mean(v[1] for v in results["baseline"])
    print("target: %s, zlib.compress of 4 KiB in a loop; windows of %.0f s, %d rounds; load average %s"
          % (args.python, args.window, args.repeat, open("/proc/loadavg").read().split()[0]))
    print("| sampler | iterations per wall s | slowdown | iterations per target CPU s | slowdown |")
    print("|---|---|---|---|---|")
    for name, _ in configs:
        values = results[name]
        if not values:
            print("| %s | - | - | - | - |" % name)
            continue
        wall = statistics.mean(v[0] for v in values)
        cpu = statistics.mean(v[1] for v in values)
        print("| %s | %.0f | %.1f%% | %.0f | %.1f%% |" % (name, wall, 100 * (1 - wall / base_wall), cpu, 100 * (1 - cpu / base_cpu)))
    for name, lines in summaries.items():
        print("%s: %s" % (name, " / ".join(lines)), file=sys.stderr)


if __name__ == "__main__":
    main()
