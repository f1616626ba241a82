#!/usr/bin/env python3
"""pytap sample vs py-spy record, side by side on the same workloads.

usage: bench/sample_bench.py [--repeat 8] [--seconds 4] [--python PATH] [--memory-seconds 60]
                             [--skip slowdown,rates,memory]

1. Target slowdown: a CPU-bound Python loop reports its own iterations per second; it
   runs alone (baseline), under pytap at 100 and 1000 Hz, and under py-spy at 100 and
   1000 Hz in its default (blocking: it pauses the target for each sample) and
   --nonblocking modes. Medians over --repeat runs, interleaved.
2. Rates: the highest rate pytap sustains without dropping samples (rounds achieved vs
   requested), and pytap's and py-spy's CPU use at 1000 Hz.
3. Memory: peak RSS of pytap and py-spy over a --memory-seconds recording of a workload
   120 frames deep at 1000 Hz.
"""
import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_PYTHON, median, py_spy, pytap_binary, table  # noqa: E402

WORKLOADS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads.py")


class Workload(object):
    """A workload process whose "rate N" lines are collected as they come."""

    def __init__(self, python, name):
        self.process = subprocess.Popen([python, WORKLOADS, name], stdout=subprocess.PIPE, text=True)
        self.process.stdout.readline()  # "ready"
        self.rates = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            if line.startswith("rate "):
                self.rates.append((time.time(), int(line.split()[1])))

    def rates_between(self, start, end):
        """The per-second rates reported in (start, end]."""
        return [r for t, r in self.rates if start < t <= end]

    def stop(self):
        self.process.kill()
        self.process.wait()


def run_profiler(argv):
    """Runs a profiler to completion; returns (user+sys CPU seconds, peak RSS KiB, stderr).

    The peak RSS comes from /usr/bin/time, not from our own wait4: Linux keeps a process's
    peak across exec, and subprocess starts the child with vfork, so the child's ru_maxrss
    would be at least this Python's own RSS (~15 MiB, more than either profiler)."""
    process = subprocess.Popen(["/usr/bin/time", "-f", "bench-maxrss-kib %M"] + argv,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    stderr = process.stderr.read().decode(errors="replace")
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(argv), process.returncode, stderr[-800:]))
    peak = re.search(r"bench-maxrss-kib (\d+)", stderr)
    return usage.ru_utime + usage.ru_stime, int(peak.group(1)) if peak else 0, stderr


def profiler_argv(tool, pid, rate, seconds, out):
    pytap, (spy, _) = TOOLS
    if tool == "pytap":
        return [pytap, "sample", "--pid", str(pid), "--rate", str(rate), "--duration", str(seconds), "-o", out + ".txt"]
    argv = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--duration", str(int(seconds)), "--format", "raw",
            "-o", out + ".txt"]
    if tool == "py-spy --nonblocking":
        argv.append("--nonblocking")
    return argv


def slowdown(args, scratch):
    configs = [("none", 0)]
    for rate in (100, 1000):
        for tool in ("pytap", "py-spy", "py-spy --nonblocking"):
            configs.append((tool, rate))
    results = dict((c, []) for c in configs)
    for repetition in range(args.repeat):
        for tool, rate in configs:
            workload = Workload(args.python, "compute")
            try:
                time.sleep(1.2)
                start = time.time()
                if tool == "none":
                    time.sleep(args.seconds)
                else:
                    run_profiler(profiler_argv(tool, workload.process.pid, rate, args.seconds, os.path.join(scratch, "s")))
                end = time.time()
                time.sleep(0.1)
                results[(tool, rate)].extend(workload.rates_between(start + 1.0, end))
            finally:
                workload.stop()
        print("  slowdown: repetition %d/%d done" % (repetition + 1, args.repeat), file=sys.stderr)
    def quartiles(values):
        ordered = sorted(values)
        return ordered[len(ordered) // 4], ordered[(3 * len(ordered)) // 4]

    baseline = median(results[("none", 0)])
    low, high = quartiles(results[("none", 0)])
    rows = [("none", "-", len(results[("none", 0)]), "%.0f" % baseline, "%.0f-%.0f" % (low, high), "-")]
    slow = {}
    for tool, rate in configs[1:]:
        values = results[(tool, rate)]
        value = median(values)
        low, high = quartiles(values)
        slow[(tool, rate)] = 1 - value / baseline
        rows.append((tool, rate, len(values), "%.0f" % value, "%.0f-%.0f" % (low, high), "%.1f%%" % (100 * slow[(tool, rate)])))
    print("\n1. Target slowdown: a CPU-bound loop's iterations per second (median and quartiles of the")
    print("   per-second rates over %d interleaved runs of %ss per configuration)" % (args.repeat, args.seconds))
    print(table(("profiler", "rate Hz", "seconds", "target rate", "quartiles", "slowdown"), rows))
    for rate in (100, 1000):
        ours = slow[("pytap", rate)]
        for other in ("py-spy", "py-spy --nonblocking"):
            theirs = slow[(other, rate)]
            ratio = ours / theirs if theirs > 0 else float("nan")
            print("   at %d Hz: pytap's slowdown / %s's = %.2f" % (rate, other, ratio))


def rates(args, scratch):
    rows = []
    workload = Workload(args.python, "deep")
    try:
        time.sleep(1)
        best = None
        for rate in (1000, 2000, 5000, 10000, 20000):
            cpu, _, err = run_profiler(profiler_argv("pytap", workload.process.pid, rate, 3, os.path.join(scratch, "r")))
            m = re.search(r"\(([\d,]+) rounds at (\d+)/s; torn (\d+), rounds missed ([\d,]+), errors (\d+)", err)
            rounds, achieved, torn, missed, errors = [int(x.replace(",", "")) for x in m.groups()]
            ok = achieved >= 0.99 * rate and missed <= 0.01 * rounds
            best = rate if ok else best
            rows.append((rate, achieved, missed, torn, "%.0f%%" % (100 * cpu / 3.0), "yes" if ok else "no"))
        cpu_pytap, _, _ = run_profiler(profiler_argv("pytap", workload.process.pid, 1000, 10, os.path.join(scratch, "c")))
        cpu_spy, _, _ = run_profiler(profiler_argv("py-spy", workload.process.pid, 1000, 10, os.path.join(scratch, "c")))
        cpu_spy_nb, _, _ = run_profiler(profiler_argv("py-spy --nonblocking", workload.process.pid, 1000, 10, os.path.join(scratch, "c")))
    finally:
        workload.stop()
    print("\n2. Sampling rates, workload 120 frames deep (pytap, 3 s each)")
    print(table(("requested Hz", "achieved/s", "rounds missed", "torn", "pytap CPU", "sustained"), rows))
    print("   highest rate sustained without dropping samples: %s Hz" % best)
    print("   CPU use at 1000 Hz over 10 s: pytap %.1f%%, py-spy %.1f%%, py-spy --nonblocking %.1f%% of one core"
          % (10 * cpu_pytap, 10 * cpu_spy, 10 * cpu_spy_nb))


def memory(args, scratch):
    rows = []
    for tool in ("pytap", "py-spy"):
        workload = Workload(args.python, "deep")
        try:
            time.sleep(1)
            cpu, rss, _ = run_profiler(profiler_argv(tool, workload.process.pid, 1000, args.memory_seconds,
                                                     os.path.join(scratch, "m")))
        finally:
            workload.stop()
        rows.append((tool, "%.1f MiB" % (rss / 1024.0), "%.1f s" % cpu))
    print("\n3. Peak memory over a %d s recording at 1000 Hz, workload 120 frames deep" % args.memory_seconds)
    print(table(("profiler", "peak RSS", "CPU time"), rows))


def main():
    global TOOLS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--memory-seconds", type=int, default=60)
    parser.add_argument("--python", default=DEFAULT_PYTHON)
    parser.add_argument("--skip", default="")
    args = parser.parse_args()
    TOOLS = (pytap_binary(), py_spy())
    print("pytap %s vs %s, target %s" % (TOOLS[0], TOOLS[1][1], args.python))
    skip = set(args.skip.split(","))
    scratch = tempfile.mkdtemp(prefix="pytap-bench-")
    if "slowdown" not in skip:
        slowdown(args, scratch)
    if "rates" not in skip:
        rates(args, scratch)
    if "memory" not in skip:
        memory(args, scratch)


if __name__ == "__main__":
    main()
