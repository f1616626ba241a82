# -*- coding: utf-8 -*-
"""A CPU-busy task two hops below the main task: main awaits gather(handler-0, handler-1),
each handler awaits its own task crunch-N, which spins in spin() between sleeps.

usage: async_busy.py TRUTH_FILE

The truth: each busy task's chain of awaiting tasks (names, outermost first) and the
functions of each task's coroutine stack, as asyncio itself shows them.
"""
import asyncio
import json
import os
import sys
import time


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def crunch():
    while True:
        spin(0.005)
        await asyncio.sleep(0)


async def handler(index):
    await asyncio.create_task(crunch(), name="crunch-%d" % index)


async def main(path):
    asyncio.current_task().set_name("main")
    handlers = [asyncio.create_task(handler(i), name="handler-%d" % i) for i in range(2)]
    await asyncio.sleep(0.1)
    truth = {"pid": os.getpid(), "chains": [["main", "handler-%d" % i, "crunch-%d" % i] for i in range(2)],
             # Each task's possible coroutine stacks, outermost first (crunch may be caught
             # inside asyncio.sleep(0), which is a coroutine too).
             "functions": {"main": [["main"]], "handler": [["handler"]],
                           "crunch": [["crunch", "spin"], ["crunch", "sleep", "__sleep0"]]}}
    with open(path + ".tmp", "w") as f:
        json.dump(truth, f)
    os.rename(path + ".tmp", path)
    await asyncio.gather(*handlers)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
