#!/usr/bin/env python3
"""pytap dump vs py-spy dump on a 10-thread process (stacks 20 deep), each run N times.

usage: bench/dump_bench.py [--repeat 30] [--python /path/to/pythonX.Y] [--chroot DIR] [--native]
                           [--baseline OLD_PYTAP]
Prints min, median and max wall time (whole process, start to exit) and CPU time (user +
system) per tool, and the ratio py-spy / pytap. With --native both tools merge native
stacks (`dump --native`), and pytap runs twice: "warm" with its disk cache
(PYTAP_CACHE_DIR) filled by an earlier run, "cold" with an empty cache each run.
--baseline runs another pytap binary (an older build) in the same rounds, warm.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_PYTHON, median, py_spy, pytap_binary, table  # noqa: E402


def timed(argv, env=None):
    """(wall seconds, CPU seconds) of one run; fails on a non-zero exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit("%s failed: %s" % (" ".join(argv), result.stderr.decode()[-500:]))
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--python", default=DEFAULT_PYTHON)
    parser.add_argument("--chroot", help="run --python inside this root (e.g. /var/lib/pytap/sid), as a container's")
    parser.add_argument("--native", action="store_true", help="dump --native with both tools")
    parser.add_argument("--baseline", help="another pytap binary to run in the same rounds")
    args = parser.parse_args()
    pytap = pytap_binary()
    spy, spy_version = py_spy()
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads.py")
    scratch = tempfile.mkdtemp(prefix="pytap-dump-bench-")
    command = [args.python, script, "ten_threads"]
    if args.chroot:  # the workload's script copied into the root's /tmp, named from inside
        inside = tempfile.mkdtemp(prefix="pytap-dump-bench-", dir=os.path.join(args.chroot, "tmp"))
        shutil.copy(script, inside)
        command = ["chroot", args.chroot, args.python, os.path.join(inside[len(args.chroot.rstrip("/")):], "workloads.py"),
                   "ten_threads"]
    workload = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        workload.stdout.readline()
        time.sleep(0.5)
        pid = str(workload.pid)
        native = ["--native"] if args.native else []
        warm_env = dict(os.environ, PYTAP_CACHE_DIR=os.path.join(scratch, "warm"))
        tools = {"pytap": ([pytap, "dump", "--pid", pid] + native, lambda _: warm_env),
                 "py-spy": ([spy, "dump", "--pid", pid] + native, lambda _: None)}
        if args.baseline:
            baseline_env = dict(os.environ, PYTAP_CACHE_DIR=os.path.join(scratch, "warm-baseline"))
            tools["pytap (baseline)"] = ([args.baseline, "dump", "--pid", pid] + native, lambda _: baseline_env)
        if args.native:
            tools["pytap (cold cache)"] = ([pytap, "dump", "--pid", pid] + native,
                                           lambda run: dict(os.environ, PYTAP_CACHE_DIR=os.path.join(scratch, "cold%d" % run)))
        # Warm the page cache for both tools' binaries and the target's libraries, and
        # pytap's disk cache.
        for argv, env in tools.values():
            timed(argv, env(-1))
            timed(argv, env(-2))
        runs = {}
        # Interleave the tools so drift on the machine affects both alike.
        for run in range(args.repeat):
            for tool, (argv, env) in tools.items():
                runs.setdefault(tool, []).append(timed(argv, env(run)))
    finally:
        workload.kill()
        workload.wait()
        shutil.rmtree(scratch, ignore_errors=True)
        if args.chroot:
            shutil.rmtree(inside, ignore_errors=True)
    rows = []
    for tool, values in runs.items():
        walls = [1000 * wall for wall, _ in values]
        cpus = [1000 * cpu for _, cpu in values]
        rows.append((tool, len(values), "%.1f / %.1f / %.1f ms" % (min(walls), median(walls), max(walls)),
                     "%.1f / %.1f / %.1f ms" % (min(cpus), median(cpus), max(cpus))))
    print("dump%s of a 10-thread process, %s; py-spy %s; load average %s"
          % (" --native" if args.native else "", args.python + (" in " + args.chroot if args.chroot else ""), spy_version, open("/proc/loadavg").read().split()[0]))
    print(table(("tool", "runs", "wall min / median / max", "CPU min / median / max"), rows))
    print("py-spy / pytap median wall: %.1fx" % (median([w for w, _ in runs["py-spy"]]) / median([w for w, _ in runs["pytap"]])))


if __name__ == "__main__":
    main()
