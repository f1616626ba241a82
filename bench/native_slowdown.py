"""Target slowdown under native sampling: `pytap sample --native` against `py-spy record
--native`, at 100 Hz and 1000 Hz, side by side in one run.

usage: python bench/native_slowdown.py [PYTHON] [--chroot DIR] [--window S] [--repeat N] [--rates 2000,5000]
                                       [--warmup S] [--cpus T,S] [--no-bpf-stats]

The target calls zlib.compress from a Python function in a loop, pinned to CPU T, and logs
its wall time, its thread's CPU time (`time.thread_time()`) and its iteration count every
20 ms. The run is a chain of short windows: off, on, off, on, ..., off. An on-window starts
one sampler (pinned to CPU S, the same CPU for both tools), waits until it has attached
(pytap: its perf events are open; py-spy: its "Sampling process" line), discards `--warmup`
seconds, measures `--window` seconds and stops the sampler with SIGINT; an off-window then
measures `--window` seconds once the sampler has exited. The configurations rotate in a
shuffled order, `--repeat` on-windows each.

Each on-window is compared with the off-windows just before and after it (their mean), two
ways: iterations per wall second (includes the competition for the cores, and py-spy
stopping the target) and iterations per second of the target thread's own CPU time (the
cost inside the target: the BPF program and perf interrupt, which this kernel charges to the
interrupted thread, and cache pollution). The table gives the median of these per-pair
slowdowns with a bootstrap 95% interval, and the same statistic for each off-window against
its off neighbours (the method's noise floor, no sampler). With bpf_stats_enabled (set for
the run and restored, unless --no-bpf-stats) it also gives pytap's BPF run time per sample
and per target CPU second. `--rates` then records at higher rates to find the highest one
held (delivered >= 90% of the requested rate per target CPU second for pytap, per wall
second for py-spy).
"""
import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from common import DEFAULT_PYTHON, pytap_binary

TARGET = r'''
import sys, time, zlib
data = bytes(range(256)) * 16
log = open(sys.argv[1], "w", buffering=1)
def work():
    n = 0
    next_log = time.monotonic()
    while True:
        zlib.compress(data, 6)
        n += 1
        if n % 16 == 0 and time.monotonic() >= next_log:
            log.write("%.6f %.6f %d\n" % (time.monotonic(), time.thread_time(), n))
            next_log += 0.02
work()
'''

BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"


def read_log(path):
    with open(path) as f:
        return [(float(t), float(cpu), int(n)) for t, cpu, n in (line.split() for line in f if line.count(" ") == 2)]


def rates(points, start, end):
    """(iterations per wall s, iterations per target thread CPU s) between two monotonic times."""
    inside = [p for p in points if start <= p[0] <= end]
    if len(inside) < 2:
        return None
    (t0, c0, n0), (t1, c1, n1) = inside[0], inside[-1]
    if t1 - t0 < 0.5 * (end - start) or c1 <= c0:
        return None
    return (n1 - n0) / (t1 - t0), (n1 - n0) / (c1 - c0), c1 - c0


def folded_samples(path):
    """Samples in a folded-stacks or py-spy raw file (each line ends with its count)."""
    total = 0
    try:
        with open(path, errors="replace") as f:
            for line in f:
                head, _, count = line.rstrip("\n").rpartition(" ")
                if head and count.isdigit():
                    total += int(count)
    except OSError:
        return 0
    return total


def bpf_prog_stats(pid):
    """(run_time_ns, run_cnt) summed over the BPF programs process `pid` holds, from fdinfo."""
    total_ns = total_cnt = 0
    fd_dir = "/proc/%d/fd" % pid
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(os.path.join(fd_dir, fd)) != "anon_inode:bpf-prog":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        total_ns += int(fields.get("run_time_ns", "0").strip())
        total_cnt += int(fields.get("run_cnt", "0").strip())
    return total_ns, total_cnt


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def has_perf_events(pid):
    try:
        fd_dir = "/proc/%d/fd" % pid
        return any(os.readlink(os.path.join(fd_dir, fd)) == "anon_inode:[perf_event]" for fd in os.listdir(fd_dir))
    except OSError:
        return False


def pinned(cpu):
    return (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None


def bootstrap_median(values, rng, reps=2000):
    """The median and a percentile bootstrap 95% interval for it."""
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(reps))
    return statistics.median(values), medians[int(0.025 * reps)], medians[int(0.975 * reps) - 1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("python", nargs="?", default=DEFAULT_PYTHON)
    parser.add_argument("--chroot", help="run PYTHON inside this root (e.g. /var/lib/pytap/sid), as a container's")
    parser.add_argument("--window", type=float, default=1.5, help="seconds measured per window")
    parser.add_argument("--repeat", type=int, default=20, help="on-windows per configuration")
    parser.add_argument("--warmup", type=float, default=0.3, help="seconds discarded after a sampler attached")
    parser.add_argument("--cpus", default="0,1", help="CPU for the target, CPU for the samplers ('' not to pin)")
    parser.add_argument("--no-bpf-stats", action="store_true", help="leave kernel.bpf_stats_enabled alone")
    parser.add_argument("--py-spy", default="/var/lib/pytap/venv/bin/py-spy")
    parser.add_argument("--tools", default="pytap,py-spy",
                        help="samplers compared: pytap, py-spy, and the controls perf (task-clock event only) "
                             "and perf-dwarf (16 KiB user stack copied per sample)")
    parser.add_argument("--hz", default="100,1000", help="sampling rates compared")
    parser.add_argument("--rates", default="2000,5000,10000", help="rates to try for the highest held ('' to skip)")
    args = parser.parse_args()
    pytap = pytap_binary()
    target_cpu, sampler_cpu = (int(c) for c in args.cpus.split(",")) if args.cpus else (None, None)
    # In a chroot, the target's script and log live in its /tmp, named there without the prefix.
    work = tempfile.mkdtemp(prefix="pytap-native-bench-", dir=os.path.join(args.chroot, "tmp") if args.chroot else None)
    inside = (lambda path: path[len(args.chroot.rstrip("/")):]) if args.chroot else (lambda path: path)
    script, log = os.path.join(work, "target.py"), os.path.join(work, "log")
    output, errors = os.path.join(work, "out"), os.path.join(work, "stderr")
    control, acks = os.path.join(work, "control"), os.path.join(work, "acks")
    os.mkfifo(control)
    os.mkfifo(acks)
    with open(script, "w") as f:
        f.write(TARGET)
    stats_before = None
    if not args.no_bpf_stats and os.access(BPF_STATS, os.W_OK):
        stats_before = open(BPF_STATS).read().strip()
        with open(BPF_STATS, "w") as f:
            f.write("1")
    target = subprocess.Popen((["chroot", args.chroot] if args.chroot else []) + [args.python, inside(script), inside(log)],
                              preexec_fn=pinned(target_cpu))

    def argv_for(tool, hz, seconds):
        if tool == "pytap":
            return [pytap, "sample", "-x", str(target.pid), "-t", str(seconds), "--native", "-r", str(hz),
                    "-f", "folded", "-o", output]
        if tool == "py-spy":
            return [args.py_spy, "record", "--native", "-p", str(target.pid), "-d", str(int(seconds)), "-r", str(hz),
                    "-f", "raw", "-o", output]
        # Controls: the same task-clock event with perf's own small record (the interrupt's cost),
        # and with perf copying 16 KiB of user stack per sample in the kernel, as pytap's program does.
        stack = ["--call-graph", "dwarf,16384"] if tool == "perf-dwarf" else []
        # perf starts with its events disabled and enables them when told on its control FIFO
        # (its start-up takes up to seconds under load): `attached` is then exact.
        return ["perf", "record", "-q", "-e", "task-clock", "-F", str(hz), "-p", str(target.pid), "-o", output,
                "-D", "-1", "--control", "fifo:%s,%s" % (control, acks)] + stack

    def attached(tool, process):
        if tool == "pytap":
            return has_perf_events(process.pid)
        if tool.startswith("perf"):
            try:
                commands = os.open(control, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO until perf opened it
            except OSError:
                return False
            with open(acks) as replies:
                os.write(commands, b"enable\n")
                os.close(commands)
                return replies.readline().startswith("ack")
        with open(errors, errors="replace") as f:
            return "Sampling process" in f.read()

    def sample_window(tool, hz, window=args.window):
        """Runs one sampler: (measured start, end, samples, whole-run start, end, BPF (ns, runs) over the
        measured part), or None if it did not attach."""
        for path in (output, errors):
            if os.path.exists(path):
                os.unlink(path)
        with open(errors, "w") as err:
            # py-spy prints its messages on stdout.
            process = subprocess.Popen(argv_for(tool, hz, 120), stdout=err, stderr=err,
                                       preexec_fn=pinned(sampler_cpu))
        deadline = time.monotonic() + 15
        while not attached(tool, process) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        attach = time.monotonic()
        if process.poll() is not None or attach >= deadline:
            process.kill()
            process.wait()
            print("%s %d Hz did not attach: %s" % (tool, hz, open(errors, errors="replace").read()[-300:]),
                  file=sys.stderr)
            return None
        time.sleep(args.warmup)
        start = time.monotonic()
        bpf0 = bpf_prog_stats(process.pid) if tool == "pytap" else None
        cpu0 = cpu_seconds(process.pid)
        time.sleep(window)
        cpu1 = cpu_seconds(process.pid)
        bpf1 = bpf_prog_stats(process.pid) if tool == "pytap" else None
        end = time.monotonic()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stopped = time.monotonic()
        bpf = (bpf1[0] - bpf0[0], bpf1[1] - bpf0[1]) if bpf0 and bpf1 else None
        if tool.startswith("perf"):
            report = subprocess.run(["perf", "report", "-i", output, "--stats"], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, universal_newlines=True).stdout
            counts = re.findall(r"SAMPLE events:\s*(\d+)", report)
            samples = int(counts[0]) if counts else 0
        else:
            samples = folded_samples(output)
        sampler_share = (cpu1 - cpu0) / (end - start) if cpu0 is not None and cpu1 is not None else None
        return start, end, samples, attach, stopped, bpf, sampler_share

    configs = [(tool, int(hz)) for hz in args.hz.split(",") for tool in args.tools.split(",")]
    rng = random.Random(1)
    # The chain: ("off", start, end) and ("on", config, start, end, samples, run start, run end, bpf).
    chain = []

    def off_window():
        time.sleep(0.2)  # the sampler's exit settles
        start = time.monotonic()
        time.sleep(args.window)
        chain.append(("off", None, start, time.monotonic()))

    rate_rows = []
    began = time.monotonic()
    loads = []
    try:
        time.sleep(1.0)
        off_window()
        for _ in range(args.repeat):
            order = configs[:]
            rng.shuffle(order)
            for tool, hz in order:
                result = sample_window(tool, hz)
                if result:
                    chain.append(("on", (tool, hz), result[0], result[1]) + result[2:])
                    off_window()
            loads.append(float(open("/proc/loadavg").read().split()[0]))
        points = read_log(log)
        for hz in [int(r) for r in args.rates.split(",") if r.strip()]:
            for tool in ("pytap", "py-spy"):
                result = sample_window(tool, hz, max(args.window, 4))
                if not result:
                    continue
                _, _, samples, run_start, run_end, _, _ = result
                measured = rates(read_log(log), run_start, run_end)
                per_cpu = samples / measured[2] if measured else 0
                per_wall = samples / (run_end - run_start)
                achieved = per_cpu if tool == "pytap" else per_wall
                rate_rows.append(("%s --native %d Hz" % (tool, hz), per_cpu, per_wall, achieved >= 0.9 * hz))
    finally:
        target.kill()
        target.wait()
        if stats_before is not None:
            with open(BPF_STATS, "w") as f:
                f.write(stats_before)
    elapsed = time.monotonic() - began

    windows = [(entry, rates(points, entry[2], entry[3])) for entry in chain]
    slowdowns = {config: ([], []) for config in configs + [None]}
    delivered = {config: [] for config in configs}
    sampler_load = {config: [] for config in configs}
    bpf_runs = {config: [] for config in configs}
    for i, (entry, measured) in enumerate(windows):
        step = 1 if entry[0] == "on" else 2  # an off-window's neighbours of its own kind
        if i < step or i + step >= len(windows) or not measured:
            continue
        before, after = windows[i - step][1], windows[i + step][1]
        if not before or not after:
            continue
        for metric in (0, 1):
            reference = (before[metric] + after[metric]) / 2
            slowdowns[entry[1]][metric].append(100 * (1 - measured[metric] / reference))
        if entry[0] == "on":
            samples, run_start, run_end, bpf, load = entry[4:]
            if load is not None:
                sampler_load[entry[1]].append(load)
            whole = rates(points, run_start, run_end)
            if whole:
                delivered[entry[1]].append((samples / whole[2], samples / (run_end - run_start)))
            if bpf and bpf[1]:
                bpf_runs[entry[1]].append((bpf[0] / bpf[1], bpf[1] / measured[2], bpf[0] / 1e9 / measured[2]))

    with open(os.path.join(work, "pairs.tsv"), "w") as f:
        for config, (walls, cpus) in slowdowns.items():
            for wall, cpu in zip(walls, cpus):
                f.write("%s\t%.2f\t%.2f\n" % ("%s %d" % config if config else "none", wall, cpu))
    print("per-pair slowdowns (wall, CPU) in %s" % os.path.join(work, "pairs.tsv"), file=sys.stderr)
    base = [w[1] for w in windows if w[0][0] == "off" and w[1]]
    print("target: %s%s, zlib.compress of 4 KiB in a loop%s; windows of %.1f s measured (%.1f s warm-up discarded), "
          "%d per configuration; %.0f s in all; load average %.1f-%.1f; baseline %.0f iterations/wall s, %.0f/CPU s"
          % (args.python, " in " + args.chroot if args.chroot else "", ", on CPU %d, samplers on CPU %d" % (target_cpu, sampler_cpu) if args.cpus else "",
             args.window, args.warmup, args.repeat, elapsed, min(loads or [0]), max(loads or [0]),
             statistics.median(b[0] for b in base), statistics.median(b[1] for b in base)))
    print("| sampler | pairs | slowdown per wall s, median [95% CI] | slowdown per target CPU s, median [95% CI] "
          "| samples per target CPU s | samples per wall s | sampler CPU s per wall s | BPF per sample "
          "| BPF share of target CPU |")
    print("|---|---|---|---|---|---|---|---|---|")

    def interval(values):
        if not values:
            return "-"
        middle, low, high = bootstrap_median(values, rng)
        return "%.1f%% [%.1f, %.1f]" % (middle, low, high)

    names = {None: "no sampler (off-window vs its off neighbours)"}
    names.update({(tool, hz): ("%s --native %d Hz" if tool in ("pytap", "py-spy") else "%s task-clock %d Hz")
                  % (tool, hz) for tool, hz in configs})
    for config in [None] + configs:
        walls, cpus = slowdowns[config]
        rates_seen, bpf = delivered.get(config), bpf_runs.get(config)
        load = sampler_load.get(config)
        print("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            names[config], len(walls), interval(walls), interval(cpus),
            "%.0f" % statistics.median(r[0] for r in rates_seen) if rates_seen else "-",
            "%.0f" % statistics.median(r[1] for r in rates_seen) if rates_seen else "-",
            "%.2f" % statistics.median(load) if load else "-",
            "%.1f µs" % (statistics.median(b[0] for b in bpf) / 1000) if bpf else "-",
            "%.2f%% (%.0f runs/CPU s)" % (100 * statistics.median(b[2] for b in bpf),
                                          statistics.median(b[1] for b in bpf)) if bpf else "-"))
    for metric, label in ((0, "per wall s"), (1, "per target CPU s")):
        mine, theirs = slowdowns.get(("pytap", 1000), ([], []))[metric], slowdowns.get(("py-spy", 1000), ([], []))[metric]
        if len(mine) < 5 or len(theirs) < 5:
            print("goal at 1000 Hz, %s: too few pairs to decide" % label)
            continue
        _, low, high = bootstrap_median(mine, rng)
        verdict = "met" if high <= 5 else "missed" if low > 5 else "not decided"
        differences = sorted(statistics.median(rng.choices(mine, k=len(mine)))
                             - 0.5 * statistics.median(rng.choices(theirs, k=len(theirs))) for _ in range(2000))
        half = "met" if differences[1949] <= 0 else "missed" if differences[50] > 0 else "not decided"
        print("goal at 1000 Hz, %s: <= 5%%: %s (95%% CI [%.1f, %.1f]); <= half of py-spy's: %s "
              "(pytap - py-spy/2, 95%% CI [%.1f, %.1f])" % (label, verdict, low, high, half,
                                                            differences[50], differences[1949]))
    if rate_rows:
        print()
        print("| sampler | samples per target CPU s | samples per wall s | held (>= 90%) |")
        print("|---|---|---|---|")
        for name, per_cpu, per_wall, held in rate_rows:
            print("| %s | %.0f | %.0f | %s |" % (name, per_cpu, per_wall, "yes" if held else "no"))


if __name__ == "__main__":
    main()
