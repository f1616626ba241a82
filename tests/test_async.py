"""`pytap dump --async` against asyncio's own view of its tasks (`asyncio.all_tasks()`,
each coroutine's `cr_await` chain, who awaits whom by construction), on every
interpreter of the matrix that has asyncio task names (3.8+)."""
import json
import re
import time

import pytest

from conftest import interpreter_params, run_pytap

ASYNC_INTERPRETERS = ["pyenv-3.8", "pyenv-3.9", "pyenv-3.10", "pyenv-3.11", "pyenv-3.12", "pyenv-3.13",
                      "debian-3.11-static", "sid-3.13", "sid-3.14", "sid-3.15",
                      "debian-3.11d", "sid-3.13d", "sid-3.14d", "sid-3.15d"]
FRAME_KEYS = ("qualname", "file", "line")


def dump_async(pid, allowed=(0,)):
    result = run_pytap("dump", "--async", "--json", "--pid", pid)
    assert result.returncode in allowed, result.stderr.decode()
    return result, json.loads(result.stdout.decode("utf-8"))


def by_id(tasks):
    return dict((t["id"], t) for t in tasks)


def assert_task_equals(got, want, names):
    assert got["name"] == want["name"]
    assert got["state"] in ("pending", "running"), got
    assert "partial" not in got, got.get("partial")
    frames = [dict((k, f[k]) for k in FRAME_KEYS) for f in got["frames"]]
    expected = [dict((k, f[k]) for k in FRAME_KEYS) for f in want["frames"]]
    assert frames == expected, "%s: coroutine stack differs" % want["name"]
    assert sorted(names[i] for i in got["awaited_by"]) == want["awaited_by"], want["name"]


def check_dump_against_truth(interp, w, idle_tasks, current_task_known=True):
    truth = w.truth()
    started = time.time()
    result, data = dump_async(w.pid)
    elapsed = time.time() - started
    assert data["pid"] == w.pid
    got, want = by_id(data["tasks"]), by_id(truth["tasks"])
    assert sorted(t["name"] for t in got.values()) == sorted(t["name"] for t in want.values())
    assert sorted(got) == sorted(want), "task ids differ"
    names = dict((i, t["name"]) for i, t in got.items())
    for task_id, expected in want.items():
        assert_task_equals(got[task_id], expected, names)
    # The shapes the workload promises are really there on this version.
    shapes = set(t["name"] for t in truth["tasks"])
    assert {"gather-a", "awaited-target", "future-waiter", "wait-a", "shielded"} <= shapes
    if interp.minor >= (3, 11) and current_task_known:
        assert "group-child-1" in shapes
    if current_task_known:
        assert "wait-for-target" in shapes
    if interp.minor >= (3, 12):
        assert "eager-sleeper" in shapes
    assert sum(1 for t in truth["tasks"] if t["name"].startswith("idle-")) == idle_tasks
    assert elapsed < 10, "dump --async of %d tasks took %.1f s" % (len(want), elapsed)
    return truth


@pytest.mark.parametrize("interp", interpreter_params(ASYNC_INTERPRETERS, debug=True))
@pytest.mark.parametrize("idle_tasks", [3, 1000])
def test_dump_async_equals_asyncio_truth(interp, idle_tasks, workload):
    w = workload(interp, "async_tasks.py", idle_tasks)
    truth = check_dump_against_truth(interp, w, idle_tasks)
    assert truth["task_types"] == ["_asyncio.Task"]

    # The text tree: each awaited task is drawn under its awaiter.
    text = run_pytap("dump", "--async", "--pid", w.pid)
    assert text.returncode == 0, text.stderr.decode()
    lines = text.stdout.decode("utf-8").splitlines()
    waiter = next(i for i, line in enumerate(lines) if "(T) task-waiter " in line)
    target = next(i for i, line in enumerate(lines) if "(T) awaited-target " in line)
    assert target > waiter and lines[target].index("(T)") > lines[waiter].index("(T)")


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.8", "pyenv-3.11", "pyenv-3.12", "pyenv-3.13",
                                                       "sid-3.14", "sid-3.15"]))
def test_dump_async_pure_python_tasks(interp, workload):
    """Tasks of the pure-Python asyncio.Task (`asyncio.tasks._PyTask`): attributes, not C fields."""
    w = workload(interp, "async_tasks.py", 3, "none", "pytask")
    # 3.14+'s TaskGroup and wait_for ask the C current_task(), which does not know
    # pure-Python tasks: the group's parent fails there, in the workload itself.
    truth = check_dump_against_truth(interp, w, 3, current_task_known=interp.minor < (3, 14))
    assert truth["task_types"] == ["asyncio.tasks.Task"]


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.8", "pyenv-3.11", "pyenv-3.12", "pyenv-3.13",
                                                       "sid-3.14", "sid-3.15"]))
def test_dump_async_while_tasks_are_cancelled(interp, workload):
    """Tasks created and cancelled without end: every dump is a whole answer (exit 0) or
    names its partial stacks (exit 6); the tasks that stay put are always right."""
    w = workload(interp, "async_tasks.py", 3, "churn")
    truth = w.truth()
    # The churner is created with the truth written; it moves on, the others stay put.
    want = dict((i, t) for i, t in by_id(truth["tasks"]).items() if t["name"] != "churner")
    seen_churn = 0
    for _ in range(15):
        result, data = dump_async(w.pid, allowed=(0, 6))
        got = by_id(data["tasks"])
        names = dict((i, t["name"]) for i, t in got.items())
        for task_id, expected in want.items():
            assert_task_equals(got[task_id], expected, names)
        for task in data["tasks"]:
            if task["id"] in want:
                continue
            seen_churn += 1
            # A task caught between its creation and create_task's set_name is still Task-N.
            assert task["name"] == "churner" or re.match(r"(churn|Task)-\d+$", task["name"]), task
            assert task["state"] in ("pending", "running")
            for frame in task["frames"]:
                assert frame["file"] and frame["qualname"], task
    assert seen_churn > 0, "no churning task was ever seen"


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12"]))
def test_dump_async_without_asyncio_is_one_line_error(interp, workload):
    w = workload(interp, "dump_target.py")
    w.truth()
    result = run_pytap("dump", "--async", "--pid", w.pid)
    assert result.returncode == 1
    message = result.stderr.decode()
    assert message.count("\n") == 1 and "has not imported asyncio" in message, message


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.7"]))
def test_dump_async_before_38_is_one_line_error(interp, workload):
    w = workload(interp, "dump_target.py")
    w.truth()
    result = run_pytap("dump", "--async", "--pid", w.pid)
    assert result.returncode == 1
    message = result.stderr.decode()
    assert message.count("\n") == 1 and "3.8 and newer" in message, message


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.8", "pyenv-3.10", "pyenv-3.11", "pyenv-3.12", "pyenv-3.13",
                                                       "sid-3.14", "sid-3.15"]))
@pytest.mark.parametrize("task_kind", ["native", "pytask"])
def test_sample_async_continues_through_awaiting_tasks(interp, task_kind, workload):
    """Each busy stack is the task chain main → handler-N → crunch-N, each task's frames on
    its `task NAME` marker, in that order, and the event loop's frames are left out; for
    C tasks and for pure-Python ones (`asyncio.tasks._PyTask`)."""
    w = workload(interp, "async_busy.py", *(["pytask"] if task_kind == "pytask" else []))
    truth = w.truth()
    result = run_pytap("sample", "--async", "--pid", w.pid, "--duration", "1.5", "--rate", "200", timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    total = in_tasks = 0
    expected = dict((chain[-1], chain) for chain in truth["chains"])
    seen = set()
    unexpected = []
    for line in result.stdout.decode("utf-8").splitlines():
        stack, count = line.rsplit(" ", 1)
        total += int(count)
        frames = stack.split(";")
        if not frames[0].startswith("task "):
            continue
        in_tasks += int(count)
        tasks = [f[len("task "):] for f in frames if f.startswith("task ")]
        assert tasks == expected[tasks[-1]], stack
        seen.add(tasks[-1])
        # Between two markers: the functions of that task's coroutine stack, outermost first.
        segments, current = [], None
        for frame in frames:
            if frame.startswith("task "):
                current = []
                segments.append(current)
            else:
                current.append(frame.split(" (")[0])
        kinds = [name.split("-")[0] for name in tasks]
        if not all(functions and any(functions == want[:len(functions)] for want in truth["functions"][kind])
                   for kind, functions in zip(kinds, segments)):
            unexpected.append((int(count), stack))
    assert in_tasks >= 0.9 * total, "only %d of %d samples ran in a task" % (in_tasks, total)
    # The thread's own walk is rarely torn in a way its checks miss (seen on 3.13 without
    # --async too: `spin;BaseEventLoop._call_soon`, a Python frame above a function that
    # calls none); such samples may not be more than 2%.
    assert sum(c for c, _ in unexpected) <= 0.02 * in_tasks, unexpected
    assert seen == set(expected), seen


def folded_counts(output):
    counts = {}
    for line in output.decode("utf-8").splitlines():
        stack, count = line.rsplit(" ", 1)
        counts[stack] = counts.get(stack, 0) + int(count)
    return counts


def expected_idle_stack(name, tasks):
    """The folded stack of an idle task: its chain of awaiting tasks, outermost first, each
    a `task NAME` marker followed by the task's coroutine stack, outermost first."""
    chain = [name]
    while tasks[chain[0]]["awaited_by"]:
        chain.insert(0, tasks[chain[0]]["awaited_by"][0])
    frames = []
    for task in chain:
        frames.append("task " + task)
        frames += ["%s (%s:%d)" % (f["qualname"], f["file"], f["line"]) for f in reversed(tasks[task]["frames"])]
    return ";".join(frames)


def idle_sampling_cases():
    """Every version with 3 C and 3 pure-Python tasks; 1,000 C tasks on 3.8, 3.12 and 3.14
    only (the three ways tasks are listed), which keeps the suite short."""
    cases = []
    for param in interpreter_params(["pyenv-3.8", "pyenv-3.11", "pyenv-3.12", "pyenv-3.13", "sid-3.14", "sid-3.15"]):
        interp = param.values[0]
        kinds = [("native", 3), ("pytask", 3)]
        if interp.minor in ((3, 8), (3, 12), (3, 14)):
            kinds.insert(1, ("native", 1000))
        for task_kind, idle_tasks in kinds:
            cases.append(pytest.param(interp, task_kind, idle_tasks, marks=param.marks,
                                      id="%s-%s-%d" % (param.id, task_kind, idle_tasks)))
    return cases


@pytest.mark.parametrize("interp,task_kind,idle_tasks", idle_sampling_cases())
def test_sample_async_idle_counts_every_waiting_task(interp, task_kind, idle_tasks, workload):
    """`sample --async --idle` on a loop where every task waits: each task that awaits no
    other task is counted once a round, its stack continued through the tasks awaiting it
    (the workload's own chains and coroutine stacks), as often as the loop's idle thread."""
    w = workload(interp, "async_tasks.py", idle_tasks, "none", *(["pytask"] if task_kind == "pytask" else []))
    truth = w.truth()
    tasks = dict((t["name"], t) for t in truth["tasks"])
    awaiting = set(name for t in truth["tasks"] for name in t["awaited_by"])
    want = dict((name, expected_idle_stack(name, tasks)) for name in tasks if name not in awaiting)
    # Reading 1,000 tasks takes a while in a debug build: two seconds leave rounds enough.
    duration = "2" if idle_tasks > 100 else "1"
    result = run_pytap("sample", "--async", "--idle", "--pid", w.pid, "--duration", duration, "--rate", "20", timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    counts = folded_counts(result.stdout)
    task_stacks = dict((s, c) for s, c in counts.items() if s.startswith("task "))
    loop_samples = sum(c for s, c in counts.items() if not s.startswith("task "))
    assert loop_samples >= 10, counts
    missing = [name for name, stack in want.items() if stack not in task_stacks]
    assert not missing, (missing[:5], sorted(task_stacks)[:5])
    assert sorted(task_stacks) == sorted(want.values())
    for name, stack in want.items():
        assert 0.8 * loop_samples <= task_stacks[stack] <= 1.1 * loop_samples + 1, (name, task_stacks[stack], loop_samples)


@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.12", "sid-3.14"]))
def test_top_async_idle_shows_waiting_tasks(interp, workload):
    """`top --async --idle` lists the coroutines tasks wait in; without --idle it does not."""
    w = workload(interp, "async_tasks.py", 3)
    w.truth()
    waiting = ("wait_parent (", "shield_parent (", "idle (", "gather_worker (")
    result = run_pytap("top", "--async", "--idle", "--once", "--interval", "1", "--pid", w.pid, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    rows = result.stdout.decode("utf-8")
    assert all(name in rows for name in waiting), rows
    result = run_pytap("top", "--async", "--once", "--interval", "1", "--pid", w.pid, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    assert not any(name in result.stdout.decode("utf-8") for name in waiting), result.stdout.decode("utf-8")
