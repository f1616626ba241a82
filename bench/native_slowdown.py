"""Target slowdown under native sampling: `pytap sample --native` against `py-spy record
--native`, at 100 Hz and 1000 Hz, side by side in one run.

usage: python bench/native_slowdown.py [PYTHON] [--window S] [--repeat N] [--rates 2000,5000]
The target calls zlib.compress from a Python function in a loop and logs its iteration
count every 50 ms. Each configuration samples it for a window; its throughput in the
window's middle (after the sampler has attached) is compared with the mean of the
sampler-free windows interleaved with them. Each round's slowdown is computed against that
mean; the table gives the median and the range over rounds, and the samples each tool
delivered per second of the target's CPU time (pytap's task clock counts CPU time) and per
wall second (py-spy samples by wall clock). `--rates` then records at higher rates to find
the highest one held (delivered >= 90% of the requested rate per target CPU second for
pytap, per wall second for py-spy). Run on a quiet machine: the samplers' own CPU use
competes with the target on a small one, which is part of what is measured.
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


def folded_samples(path):
    """Samples in a folded-stacks file (each line ends with its count)."""
    total = 0
    try:
        with open(path, errors="replace") as f:
            for line in f:
                head, _, count = line.rstrip("\n").rpartition(" ")
                if head and count.isdigit():
                    total += int(count)
    except OSError:
        return 0
    return total


def target_cpu(log_path, start, end):
    """The target's CPU seconds between two monotonic times (from its log)."""
    points = []
    with open(log_path) as f:
        for line in f:
            t, cpu, _ = line.split()
            if start <= float(t) <= end:
                points.append(float(cpu))
    return points[-1] - points[0] if len(points) >= 2 else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("python", nargs="?", default=DEFAULT_PYTHON)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--py-spy", default="/var/lib/pytap/venv/bin/py-spy")
    parser.add_argument("--rates", default="2000,5000,10000", help="rates to try for the highest held ('' to skip)")
    args = parser.parse_args()
    pytap = pytap_binary()
    work = tempfile.mkdtemp(prefix="pytap-native-bench-")
    script, log = os.path.join(work, "target.py"), os.path.join(work, "log")
    with open(script, "w") as f:
        f.write(TARGET)
    target = subprocess.Popen([args.python, script, log])
    time.sleep(1.5)
    output = os.path.join(work, "out.folded")

    def argv_for(tool, hz, seconds):
        if tool == "pytap":
            return [pytap, "sample", "-x", str(target.pid), "-t", str(seconds), "--native", "-r", str(hz), "-f", "folded", "-o", output]
        return [args.py_spy, "record", "--native", "-p", str(target.pid), "-d", str(int(seconds)), "-r", str(hz),
                "-f", "raw", "-o", output]

    configs = [("baseline", None, None, None)]
    for hz in (100, 1000):
        configs.append(("pytap --native %d Hz" % hz, "pytap", hz, argv_for("pytap", hz, args.window)))
        configs.append(("py-spy --native %d Hz" % hz, "py-spy", hz, argv_for("py-spy", hz, args.window)))
    results = {name: [] for name, _, _, _ in configs}
    delivered = {name: [] for name, _, _, _ in configs}
    summaries = {}

    def run(name, argv):
        if os.path.exists(output):
            os.unlink(output)
        start = time.monotonic()
        if argv:
            done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            summaries[name] = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        else:
            time.sleep(args.window)
        end = time.monotonic()
        cpu = target_cpu(log, start, end)
        samples = folded_samples(output) if argv else 0
        return start, end, samples, cpu

    rate_rows = []
    try:
        for _ in range(args.repeat):
            for name, _, _, argv in configs:
                start, end, samples, cpu = run(name, argv)
                # The middle of the window: the sampler attached, not yet detaching.
                measured = rate(log, start + 1.5, min(end, start + args.window) - 0.3)
                if measured:
                    results[name].append(measured)
                if argv:
                    delivered[name].append((samples / max(1e-9, cpu or 0), samples / (end - start)))
        for hz in [int(r) for r in args.rates.split(",") if r.strip()]:
            for tool in ("pytap", "py-spy"):
                name = "%s --native %d Hz" % (tool, hz)
                start, end, samples, cpu = run(name, argv_for(tool, hz, 4))
                per_cpu, per_wall = samples / max(1e-9, cpu or 0), samples / (end - start)
                achieved = per_cpu if tool == "pytap" else per_wall
                rate_rows.append((name, per_cpu, per_wall, achieved >= 0.9 * hz))
    finally:
        target.kill()
        target.wait()
    base_wall = statistics.mean(v[0] for v in results["baseline"])
    base_cpu = statistics.mean(v[1] for v in results["baseline"])
    print("target: %s, zlib.compress of 4 KiB in a loop; windows of %.0f s, %d rounds; load average %s"
          % (args.python, args.window, args.repeat, open("/proc/loadavg").read().split()[0]))
    print("| sampler | iterations per wall s | slowdown (wall), median [min, max] | slowdown (per target CPU s) | samples per target CPU s | samples per wall s |")
    print("|---|---|---|---|---|---|")

    def spread(values):
        return "%.1f%% [%.1f, %.1f]" % (statistics.median(values), min(values), max(values))

    for name, _, _, _ in configs:
        values = results[name]
        if not values:
            print("| %s | - | - | - | - | - |" % name)
            continue
        walls = [100 * (1 - v[0] / base_wall) for v in values]
        cpus = [100 * (1 - v[1] / base_cpu) for v in values]
        rates = delivered[name]
        print("| %s | %.0f | %s | %s | %s | %s |" % (
            name, statistics.median(v[0] for v in values), spread(walls), spread(cpus),
            "%.0f" % statistics.median(r[0] for r in rates) if rates else "-",
            "%.0f" % statistics.median(r[1] for r in rates) if rates else "-"))
    if rate_rows:
        print()
        print("| sampler | samples per target CPU s | samples per wall s | held (>= 90%) |")
        print("|---|---|---|---|")
        for name, per_cpu, per_wall, held in rate_rows:
            print("| %s | %.0f | %.0f | %s |" % (name, per_cpu, per_wall, "yes" if held else "no"))
    for name, lines in summaries.items():
        print("%s: %s" % (name, " / ".join(lines)), file=sys.stderr)

if __name__ == "__main__":
    main()
