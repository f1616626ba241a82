#!/usr/bin/env python3
"""pytap dump vs py-spy dump on a 10-thread process (stacks 20 deep), each run N times.

usage: bench/dump_bench.py [--repeat 30] [--python /path/to/pythonX.Y] [--baseline OLDER-PYTAP]
Prints min and median wall time per tool and the ratio pytap / py-spy (the issue's goal:
at most 0.25). --baseline adds an older pytap binary to the same interleaved runs.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_PYTHON, median, py_spy, pytap_binary, table, time_command  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--python", default=DEFAULT_PYTHON)
    parser.add_argument("--baseline", help="an older pytap binary, run in the same rounds")
    args = parser.parse_args()
    pytap = pytap_binary()
    tools = {"pytap": pytap}
    spy, spy_version = py_spy()
    workload = subprocess.Popen([args.python, os.path.join(os.path.dirname(__file__), "workloads.py"), "ten_threads"],
                                stdout=subprocess.PIPE, text=True)
    try:
        workload.stdout.readline()
        time.sleep(0.5)
        pid = str(workload.pid)
        # Warm the page cache for both tools' binaries and the target's libraries.
        if args.baseline:
            tools["baseline"] = args.baseline
        tools["py-spy"] = spy
        for binary in tools.values():
            time_command([binary, "dump", "--pid", pid], 2)
        runs = {}
        # Interleave the tools so drift on the machine affects all alike.
        for _ in range(args.repeat):
            for tool, binary in tools.items():
                runs.setdefault(tool, []).extend(time_command([binary, "dump", "--pid", pid], 1))
    finally:
        workload.kill()
        workload.wait()
    rows = []
    for tool in tools:
        rows.append((tool, len(runs[tool]), "%.2f ms" % (1000 * min(runs[tool])), "%.2f ms" % (1000 * median(runs[tool]))))
    print("dump of a 10-thread process, %s; py-spy %s" % (args.python, spy_version))
    print(table(("tool", "runs", "min", "median"), rows))
    for tool in tools:
        if tool != "py-spy":
            print("%s / py-spy: median %.2f, min %.2f" % (tool, median(runs[tool]) / median(runs["py-spy"]),
                                                          min(runs[tool]) / min(runs["py-spy"])))


if __name__ == "__main__":
    main()
