# -*- coding: utf-8 -*-
"""A CPU-busy task two hops below the main task: main awaits gather(handler-0, handler-1),
each handler awaits its own task crunch-N, which spins in spin() between sleeps.

usage: async_busy.py TRUTH_FILE [pytask]

The truth: each busy task's chain of awaiting tasks (names, outermost first) and the
functions of each task's coroutine stack, as asyncio itself shows them. With `pytask`,
every task is a pure-Python `asyncio.tasks._PyTask`.
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
    # 3.14's pure-Python tasks are current only to the pure-Python bookkeeping.
    (asyncio.current_task() or asyncio.tasks._py_current_task()).set_name("main")
    handlers = [asyncio.create_task(handler(i), name="handler-%d" % i) for i in range(2)]
    await asyncio.sleep(0.1)
    # A coroutine awaiting a pure-Python task is suspended in the task's __await__ generator.
    handler_stack = ["handler"]
    if isinstance(handlers[0], asyncio.tasks._PyTask):
        code = asyncio.futures._PyFuture.__await__.__code__
        handler_stack.append(getattr(code, "co_qualname", code.co_name))
    truth = {"pid": os.getpid(), "chains": [["main", "handler-%d" % i, "crunch-%d" % i] for i in range(2)],
             # Each task's possible coroutine stacks, outermost first (crunch may be caught
             # inside asyncio.sleep(0), which is a coroutine too).
             "functions": {"main": [["main"]], "handler": [handler_stack],
                           "crunch": [["crunch", "spin"], ["crunch", "sleep", "__sleep0"]]}}
    with open(path + ".tmp", "w") as f:
        json.dump(truth, f)
    os.rename(path + ".tmp", path)
    await asyncio.gather(*handlers)


if __name__ == "__main__":
    if "pytask" in sys.argv[2:]:
        asyncio.tasks.Task = asyncio.Task = asyncio.tasks._PyTask
    asyncio.run(main(sys.argv[1]))
