"""Threads that spend their time off the CPU, each in one kind of wait, for
`sample --idle --native`: the native frames of the wait must sit above the Python function.

usage: python idle_waits.py TRUTH.json SECONDS
sleeper: time.sleep (clock_nanosleep); selector: select.select on a socket pair (select or
poll); receiver: socket.recv with a timeout (poll, then recv); waiter: Lock.acquire with a
timeout (a futex wait). Each waits in short steps, so it goes off the CPU again and again;
`forever` waits on a lock nobody releases (asleep since before any sampling began).
Writes {"pid", "functions": {thread name: function}, "forever"} once the threads run.
"""
import json
import os
import select
import socket
import sys
import threading
import time

STEP = 0.02


def sleeper(until):
    while time.time() < until:
        time.sleep(STEP)


def selector(until):
    a, b = socket.socketpair()
    while time.time() < until:
        select.select([a], [], [], STEP)


def receiver(until):
    a, b = socket.socketpair()
    a.settimeout(STEP)
    while time.time() < until:
        try:
            a.recv(16)
        except socket.timeout:
            pass


def waiter(until):
    lock = threading.Lock()
    lock.acquire()
    while time.time() < until:
        lock.acquire(True, STEP)


def blocked_forever(lock):
    lock.acquire()


def main():
    truth_path, seconds = sys.argv[1], float(sys.argv[2])
    until = time.time() + seconds
    functions = {"sleeper": sleeper, "selector": selector, "receiver": receiver, "waiter": waiter}
    threads = [threading.Thread(target=f, args=(until,), name=name) for name, f in functions.items()]
    held = threading.Lock()
    held.acquire()
    threads.append(threading.Thread(target=blocked_forever, args=(held,), name="forever"))
    for t in threads:
        t.daemon = True
        t.start()
    time.sleep(0.2)
    with open(truth_path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "functions": {name: f.__name__ for name, f in functions.items()},
                   "forever": blocked_forever.__name__}, f)
    os.rename(truth_path + ".tmp", truth_path)
    while time.time() < until:
        time.sleep(0.5)


if __name__ == "__main__":
    main()
