# -*- coding: utf-8 -*-
"""Spends its time in zlib.compress called from a Python function (compress_chunk), on the
main thread and on N-1 workers. Usage: native_zlib.py TRUTH [N]. Writes TRUTH (pid, the
threads' OS ids) once all run, then TRUTH.progress, a count that grows while it runs.
Runs on Python 2.7 and 3.6+. For `dump --native`: the merged stack must show compress_chunk
rootward of zlib's deflate frames."""
from __future__ import print_function

import json
import os
import sys
import threading
import zlib

from truth import current_tid

DATA = os.urandom(1 << 15) * 4
progress = [0]
tids = []


def compress_chunk():
    return zlib.compress(DATA, 9)


def worker_loop():
    tids.append(current_tid())
    while True:
        compress_chunk()
        progress[0] += 1


def main():
    truth_path = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    tids.append(current_tid())
    for _ in range(count - 1):
        thread = threading.Thread(target=worker_loop)
        thread.daemon = True
        thread.start()
    while len(tids) < count:
        compress_chunk()
    with open(truth_path + ".tmp", "w") as out:
        json.dump({"pid": os.getpid(), "tids": sorted(tids)}, out)
    os.rename(truth_path + ".tmp", truth_path)
    own = 0
    while True:
        compress_chunk()
        progress[0] += 1
        own += 1
        if own % 10:
            continue
        with open(truth_path + ".progress.tmp", "w") as out:
            out.write(str(progress[0]))
        os.rename(truth_path + ".progress.tmp", truth_path + ".progress")


if __name__ == "__main__":
    main()
