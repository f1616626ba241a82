#!/usr/bin/env python3
"""pytap sample vs CPython 3.15's own profiler (`python3.15 -m profiling.sampling attach`).

usage: bench/cpython_bench.py [--seconds 3] [--rates 1000,10000,20000] [--repeat 1]
                              [--root /var/lib/pytap/sid] [--python python3.15]
                              [--baseline PATH-TO-AN-OLDER-PYTAP]

The target is the chroot's python3.15 running bench/workloads.py `compute` (one busy
thread that reports its own iterations per second). 3.15's profiler must be the target's
own minor version, so it runs inside the chroot too. Per rate, interleaved on one target:
a baseline window with no profiler, pytap (default: on-CPU samples, a /proc stat read
per sample of a thread not holding the GIL), pytap --idle (no stat read: what 3.15's
default wall mode does) and 3.15's profiler (default wall mode, --collapsed). Reported per run: CPU time (user+sys from
wait4, less sensitive to other load than wall time), samples delivered, samples lost
(torn/errors; rounds missed), CPU per sample, and the target's slowdown against the
baseline windows. Ratios are pytap's CPU over 3.15's in the same round; "per round" is
the lowest, median and highest of the per-round ratios of CPU per delivered sample.
--baseline adds an older pytap binary to each round (before/after in the same runs).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import median, pytap_binary, table  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class ChrootWorkload(object):
    """bench/workloads.py NAME run by the chroot's python; its "rate N" lines collected."""

    def __init__(self, root, python, name, scratch):
        shutil.copy(os.path.join(HERE, "workloads.py"), os.path.join(root + scratch, "workloads.py"))
        self.process = subprocess.Popen(["chroot", root, python, os.path.join(scratch, "workloads.py"), name],
                                        stdout=subprocess.PIPE, text=True)
        self.process.stdout.readline()  # "ready"
        self.rates = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            if line.startswith("rate "):
                self.rates.append((time.time(), int(line.split()[1])))

    def rates_between(self, start, end):
        return [r for t, r in self.rates if start < t <= end]

    def stop(self):
        self.process.kill()
        self.process.wait()


def run(argv):
    """(user+sys CPU seconds, peak RSS KiB, stdout+stderr) of a command run to completion."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("%s failed: %s" % (" ".join(argv), output[-800:]))
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss, output


def number(text):
    return int(text.replace(",", ""))


def run_pytap(binary, pid, rate, seconds, out, idle):
    argv = [binary, "sample", "--pid", str(pid), "--rate", str(rate), "--duration", str(seconds), "-o", out]
    if idle:
        argv.append("--idle")
    cpu, _, output = run(argv)
    m = re.search(r"pytap: ([\d,]+) samples? .*\(([\d,]+) rounds at \d+/s; torn (\d+), rounds missed ([\d,]+), errors (\d+)",
                  output)
    if not m:
        sys.exit("unexpected pytap summary: " + output[-500:])
    samples, _, torn, missed, errors = [number(g) for g in m.groups()]
    return {"cpu": cpu, "samples": samples, "lost": torn + errors, "missed": missed}


def run_cpython(root, python, pid, rate, seconds, out):
    cpu, _, output = run(["chroot", root, python, "-m", "profiling.sampling", "attach", "-r", str(rate),
                          "-d", str(seconds), "--collapsed", "-o", out, str(pid)])
    captured = re.search(r"Captured ([\d,]+) samples?", output)
    error_rate = re.search(r"Error rate: ([\d.]+)", output)
    if not captured or not error_rate:
        sys.exit("unexpected profiling.sampling output: " + output[-500:])
    attempts = number(captured.group(1))  # failed samples included
    errors = int(round(attempts * float(error_rate.group(1)) / 100))
    missed = re.search(r"missed (-?\d+) samples", output)
    return {"cpu": cpu, "samples": attempts - errors, "lost": errors, "missed": max(0, number(missed.group(1))) if missed else 0}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rates", default="1000,10000,20000")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--root", default="/var/lib/pytap/sid")
    parser.add_argument("--python", default="python3.15")
    parser.add_argument("--baseline", help="an older pytap binary, run in the same rounds")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    binaries = {"pytap": pytap_binary(), "pytap --idle": pytap_binary()}
    if args.baseline:
        binaries.update({"baseline": args.baseline, "baseline --idle": args.baseline})
    tools = ("none",) + tuple(binaries) + ("3.15 profiler",)
    scratch = tempfile.mkdtemp(prefix="pytap-bench-", dir=args.root + "/tmp")[len(args.root):]
    load = os.getloadavg()
    workload = ChrootWorkload(args.root, args.python, "compute", scratch)
    results = {}
    baseline = []
    try:
        time.sleep(1.5)
        for _ in range(args.repeat):
            for rate in rates:
                for tool in tools:
                    out = os.path.join(scratch, "out")
                    start = time.time()
                    if tool == "none":
                        time.sleep(args.seconds)
                        result = {}
                    elif tool == "3.15 profiler":
                        result = run_cpython(args.root, args.python, workload.process.pid, rate, args.seconds, out)
                    else:
                        result = run_pytap(binaries[tool], workload.process.pid, rate, args.seconds, args.root + out + ".txt",
                                           idle=tool.endswith("--idle"))
                    end = time.time()
                    time.sleep(0.2)
                    speeds = workload.rates_between(start + 1.0, end)
                    if tool == "none":
                        baseline.extend(speeds)
                        continue
                    result["speed"] = speeds
                    results.setdefault((rate, tool), []).append(result)
    finally:
        workload.stop()
        shutil.rmtree(args.root + scratch, ignore_errors=True)
    base = median(baseline) if baseline else float("nan")
    rows = []
    for rate in rates:
        cp = results[(rate, "3.15 profiler")]
        cp_cpu = sum(r["cpu"] for r in cp)
        for tool in tools[1:]:
            runs = results[(rate, tool)]
            cpu = sum(r["cpu"] for r in runs)
            samples = sum(r["samples"] for r in runs)
            speeds = [s for r in runs for s in r["speed"]]
            slowdown = 1 - median(speeds) / base if speeds and base == base else float("nan")
            rows.append((rate, tool, "%.3f s" % cpu, samples, "%.1f%%" % (100.0 * samples / (rate * args.seconds * len(runs))),
                         sum(r["lost"] for r in runs), sum(r["missed"] for r in runs),
                         "%.1f" % (1e6 * cpu / samples) if samples else "-", "%.1f%%" % (100 * slowdown),
                         "%.2f" % (cpu / cp_cpu) if cp_cpu else "-", spread(runs, cp)))
    print("pytap vs %s -m profiling.sampling attach (chroot %s), workload `compute` (1 busy thread), %s s a run, %d round(s)"
          % (args.python, args.root, args.seconds, args.repeat))
    print("load average at the start: %.2f %.2f %.2f; target's baseline %.0f iterations/s" % (load + (base,)))
    print(table(("rate Hz", "profiler", "CPU (user+sys)", "samples", "of asked", "torn/errors", "missed",
                 "CPU µs/sample", "target slowdown", "CPU / 3.15's", "per round min/median/max"), rows))


def spread(runs, peer):
    """Lowest and highest ratio of CPU per delivered sample to the peer's, round by round
    (each pair ran back to back on one target): the noise of a shared machine."""
    ratios = [(r["cpu"] / r["samples"]) / (p["cpu"] / p["samples"]) for r, p in zip(runs, peer)
              if r["samples"] and p["samples"] and p["cpu"]]
    if len(ratios) < 2:
        return "-"
    return "%.2f/%.2f/%.2f" % (min(ratios), median(ratios), max(ratios))


if __name__ == "__main__":
    main()
