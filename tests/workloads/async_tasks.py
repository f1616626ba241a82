# -*- coding: utf-8 -*-
"""asyncio tasks in known shapes, and the truth about them as asyncio itself sees it.

usage: async_tasks.py TRUTH_FILE [IDLE_TASKS] [churn] [pytask]

Shapes: a gather tree, a TaskGroup (3.11+), a task awaiting another task, a task
awaiting a plain future, tasks awaited through `asyncio.wait`, `asyncio.wait_for` and
`asyncio.shield`, an eager task (3.12+), IDLE_TASKS idle tasks. Once every task is suspended, a loop
callback (no task runs then) writes each pending task's id, name, coroutine chain
(innermost first, followed through cr_await / gi_yieldfrom, as `asyncio.all_tasks()` and
the coroutines report it) and the names of the tasks awaiting it, known by construction.
With `churn`, tasks are then created and cancelled without end. With `pytask`, every
task is a pure-Python `asyncio.tasks._PyTask` instead of the C `_asyncio.Task`.
"""
import asyncio
import json
import os
import sys

import truth

AWAITED_BY = {}  # task name -> names of the tasks awaiting it


def coroutine_chain(task):
    frames = []
    coro = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        code = frame.f_code
        frames.append({"name": code.co_name, "qualname": getattr(code, "co_qualname", code.co_name),
                       "file": code.co_filename, "line": frame.f_lineno})
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    frames.reverse()
    return frames


def all_tasks():
    # 3.14+: pure-Python tasks are registered with the pure-Python bookkeeping only.
    if asyncio.Task is getattr(asyncio.tasks, "_PyTask", None) and hasattr(asyncio.tasks, "_py_all_tasks"):
        return asyncio.tasks._py_all_tasks()
    return asyncio.all_tasks()


def write_truth(path):
    tasks = []
    for task in all_tasks():
        tasks.append({"id": id(task), "name": task.get_name(), "frames": coroutine_chain(task),
                      "awaited_by": sorted(AWAITED_BY.get(task.get_name(), []))})
    kinds = sorted(set(type(task).__module__ + "." + type(task).__name__ for task in all_tasks()))
    info = {"pid": os.getpid(), "task_types": kinds, "version": "%d.%d" % sys.version_info[:2], "tasks": tasks}
    with open(path + ".tmp", "w") as f:
        json.dump(info, f)
    os.rename(path + ".tmp", path)


async def deepest(future):
    await future


async def middle(future):
    await deepest(future)


async def leaf_sleep():
    await asyncio.sleep(3600)


async def gather_worker():
    await leaf_sleep()


async def gather_parent():
    await asyncio.gather(asyncio.create_task(gather_worker(), name="gather-a"),
                         asyncio.create_task(gather_worker(), name="gather-b"))


async def group_child():
    await asyncio.sleep(3600)


async def group_parent():
    async with asyncio.TaskGroup() as group:
        group.create_task(group_child(), name="group-child-1")
        group.create_task(group_child(), name="group-child-2")


async def awaited_target(future):
    await middle(future)


async def task_waiter(target):
    await target


async def wait_parent(tasks):
    await asyncio.wait(tasks)


async def wait_for_parent(task):
    await asyncio.wait_for(task, 3600)


async def shield_parent(task):
    await asyncio.shield(task)


async def idle(index):
    await asyncio.sleep(3600 + index)


async def churn():
    count = 0
    while True:
        tasks = [asyncio.create_task(leaf_sleep(), name="churn-%d" % (count + i)) for i in range(20)]
        count += 20
        await asyncio.sleep(0.001)
        for task in tasks:
            task.cancel()
        await asyncio.sleep(0)


async def main(path, idle_count, churning):
    loop = asyncio.get_running_loop()
    never = loop.create_future()
    # 3.14's pure-Python tasks are current only to the pure-Python bookkeeping.
    current = asyncio.current_task() or asyncio.tasks._py_current_task()
    current.set_name("main")
    spawned = [asyncio.create_task(gather_parent(), name="gather-parent")]
    AWAITED_BY["gather-a"] = AWAITED_BY["gather-b"] = ["gather-parent"]
    if sys.version_info >= (3, 11):
        spawned.append(asyncio.create_task(group_parent(), name="group-parent"))
        AWAITED_BY["group-child-1"] = AWAITED_BY["group-child-2"] = ["group-parent"]
    target = asyncio.create_task(awaited_target(loop.create_future()), name="awaited-target")
    spawned.append(target)
    spawned.append(asyncio.create_task(task_waiter(target), name="task-waiter"))
    AWAITED_BY["awaited-target"] = ["task-waiter"]
    spawned.append(asyncio.create_task(deepest(never), name="future-waiter"))
    waited = [asyncio.create_task(leaf_sleep(), name="wait-%s" % x) for x in "ab"]
    spawned += waited + [asyncio.create_task(wait_parent(waited), name="wait-parent")]
    AWAITED_BY["wait-a"] = AWAITED_BY["wait-b"] = ["wait-parent"]
    # 3.12+'s wait_for asks the C current_task(), which on 3.14+ does not know pure-Python tasks.
    if asyncio.current_task() is not None or sys.version_info < (3, 12):
        waited = asyncio.create_task(leaf_sleep(), name="wait-for-target")
        spawned += [waited, asyncio.create_task(wait_for_parent(waited), name="wait-for-parent")]
        AWAITED_BY["wait-for-target"] = ["wait-for-parent"]
    waited = asyncio.create_task(leaf_sleep(), name="shielded")
    spawned += [waited, asyncio.create_task(shield_parent(waited), name="shield-parent")]
    AWAITED_BY["shielded"] = ["shield-parent"]
    if hasattr(asyncio, "eager_task_factory"):  # 3.12+: a task started eagerly, then suspended
        loop.set_task_factory(asyncio.create_eager_task_factory(asyncio.Task))  # _PyTask with `pytask`
        spawned.append(asyncio.create_task(leaf_sleep(), name="eager-sleeper"))
        loop.set_task_factory(None)
    for index in range(idle_count):
        spawned.append(asyncio.create_task(idle(index), name="idle-%d" % index))
    await asyncio.sleep(0.2)
    loop.call_soon(write_truth, path)
    if churning:
        spawned.append(asyncio.create_task(churn(), name="churner"))
    await never


if __name__ == "__main__":
    if "pytask" in sys.argv[3:]:
        asyncio.tasks.Task = asyncio.Task = asyncio.tasks._PyTask
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0, "churn" in sys.argv[3:]))
