# -*- coding: utf-8 -*-
"""Makes a new function every PERIOD seconds with exec, keeps the CPU busy in it for that
long, then drops it: code objects freed and reallocated at the same address (as
templating engines, namedtuple and test runners do).

usage: python code_churn.py TRUTH.json SECONDS [PERIOD]
Runs on Python 2.7 and 3.6+. Writes, per function made, its name and when it started and
ended (the process's monotonic clock), so each name's share of the time is known.
"""
import json
import os
import sys
import time

clock = getattr(time, "monotonic", time.time)

SOURCE = """def %s(clock, until):
    n = 0
    while clock() < until:
        n += 1
    return n
"""


def main():
    truth_path = sys.argv[1]
    seconds = float(sys.argv[2])
    period = float(sys.argv[3]) if len(sys.argv) > 3 else 0.02
    made = []
    start = clock()
    index = 0
    while clock() - start < seconds:
        index += 1
        name = "churn_%06d" % index
        namespace = {}
        exec(SOURCE % name, namespace)
        function = namespace.pop(name)
        began = clock()
        function(clock, began + period)
        made.append([name, began, clock()])
        del function, namespace
    temporary = truth_path + ".tmp"
    with open(temporary, "w") as f:
        json.dump({"functions": made, "period": period}, f)
    os.rename(temporary, truth_path)


main()
