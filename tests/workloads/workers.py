# -*- coding: utf-8 -*-
"""A parent that waits while multiprocessing workers burn CPU, for `--subprocesses`.

usage: python workers.py TRUTH.json [SECONDS]
"""
from __future__ import print_function

import json
import multiprocessing
import os
import sys
import time


def worker_spin(seconds):
    deadline = time.time() + seconds
    total = 0
    while time.time() < deadline:
        for i in range(1000):
            total += i
    return total


def main():
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30
    workers = [multiprocessing.Process(target=worker_spin, args=(seconds,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    with open(sys.argv[1] + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "workers": [w.pid for w in workers]}, f)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
