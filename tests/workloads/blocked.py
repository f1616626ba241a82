"""memtrace --via tracemalloc's workload for threads that run no Python code: the main
thread sleeps SECONDS in one C call; with "worker", a second thread keeps a string from
keep() every millisecond meanwhile. TRUTH is written at the start (pid, file, the line in
keep()); "woke" is printed when the sleep ends.

Usage: blocked.py TRUTH SECONDS [worker]
"""
import json
import os
import sys
import threading
import time

kept = []


def keep():
    while True:
        kept.append(str(len(kept)) * 10)
        time.sleep(0.001)


def main():
    if len(sys.argv) > 3 and sys.argv[3] == "worker":
        threading.Thread(target=keep, name="keeper", daemon=True).start()
    with open(sys.argv[1] + ".tmp", "w") as out:
        json.dump({"pid": os.getpid(), "file": os.path.abspath(__file__),
                   "line": keep.__code__.co_firstlineno + 2}, out)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(float(sys.argv[2]))
    print("woke")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
