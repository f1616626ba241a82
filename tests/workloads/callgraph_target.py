"""Calls `sorted()` (and `len`, `json.dumps`) inside `trigger_root` every 20 ms, for
`pytap callgraph`, timing each `sorted()` call itself.

usage: python callgraph_target.py TRUTH.json SECONDS
Writes {"pid", "items"} to TRUTH.json once running; appends "wall_time duration" of every
`sorted()` call (seconds) to TRUTH.json.durations.
"""
import json
import os
import sys
import time

clock = getattr(time, "monotonic", time.time)
ITEMS = 64


def trigger_root(data):
    started = clock()
    ordered = sorted(data)
    took = clock() - started
    return took, len(ordered) + len(json.dumps(ordered[:3]))


def main():
    truth_path, seconds = sys.argv[1], float(sys.argv[2])
    data = list(range(ITEMS, 0, -1))
    with open(truth_path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "items": ITEMS}, f)
    os.rename(truth_path + ".tmp", truth_path)
    until = clock() + seconds
    with open(truth_path + ".durations", "w") as log:
        while clock() < until:
            took, _ = trigger_root(data)
            log.write("%.6f %.9f\n" % (time.time(), took))
            log.flush()
            time.sleep(0.02)


if __name__ == "__main__":
    main()
