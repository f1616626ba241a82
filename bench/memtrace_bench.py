"""What tracing allocations costs an allocation-heavy program: `pytap memtrace --via probes`
against memray (with and without --trace-python-allocators), all launching the same
workload, in one run; plus the events per second pytap sustains, its peak memory, and the
raw cost of one uprobe hit on this machine, measured in the same run, to compare
memtrace's cost per probe hit with (the goal: within 1.5x). On sid's python3.14: memray
again (its cp314 wheel installed into the chroot), plain `python3.14 -X tracemalloc=N`
(tracemalloc's own cost, N = 1, pytap's default limit, --tracemalloc-frames) and
`pytap memtrace --via tracemalloc` (the default there).

usage: sudo python3 bench/memtrace_bench.py [--iterations N] [--repeat R] [--depth D]
           [--rows memray,probes,tracemalloc] [--tracemalloc-frames 4,8,...] [--bpf-stats]
memray comes from PyPI into a venv this script makes (/var/lib/pytap/bench-venv, or
$PYTAP_BENCH_VENV) from the interpreter under test.

The workload waits for a go file before its timed loop, so each tracer is attached (pytap:
its first line, after one traced second with probes) before the loop starts; the loop's own
wall time is the measure. Each repeat runs every variant once in turn, so the machine's
load moves them together: slowdowns and costs are per-repeat ratios, printed as median
(min-max). The raw uprobe cost: the same loop with one counting perf
uprobe (no BPF program) on the entry of the same _PyObject_Malloc memtrace probes (the
same instruction, a push the kernel emulates; memtrace's free probe sits on an emulated jump
too, docs/DESIGN.md); (probed - bare) / hits counted. memtrace's cost per
hit is (traced - bare) / its probe hits (entry, return and free probes). --bpf-stats adds
the kernel's own count of the time spent in memtrace's BPF programs per hit.
"""
import argparse
import ctypes
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

from common import counting_uprobe, file_offset, median, pytap_binary, table

PYTHON = "/root/.pyenv/versions/3.12.1/bin/python3.12"
SID = "/var/lib/pytap/sid"
SID_PYTHON = "/usr/bin/python3.14"
VENV = os.environ.get("PYTAP_BENCH_VENV", "/var/lib/pytap/bench-venv")

WORKLOAD = r'''
import json, os, sys, time
go, out, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
while not os.path.exists(go):
    time.sleep(0.005)
kept = []
depth = int(sys.argv[5]) if len(sys.argv) > 5 else 1


def loop():
    # About three object-allocator blocks per round (a dict, a str, an int beyond the
    # small ones), freed at once except one round in a hundred.
    for i in range(n):
        record = {"id": i + 1000, "name": str(i)}
        if i % 100 == 0:
            kept.append(record)


def nest(level):
    # The loop runs `depth` Python frames deep: what a stack-capturing tracer pays per
    # allocation may grow with it (tracemalloc walks up to its traceback limit).
    return loop() if level <= 1 else nest(level - 1)


start = time.perf_counter()
nest(depth - 1) if depth > 1 else loop()
elapsed = time.perf_counter() - start
with open(out + ".tmp", "w") as f:
    json.dump({"seconds": elapsed, "rounds": n}, f)
os.rename(out + ".tmp", out)
'''


class Run:
    """One launch of the workload under `argv` (the workload's own argv appended)."""

    depth = 1

    def __init__(self, directory, prefix, python, mode, n, root=None, python_options=()):
        self.directory, self.mode, self.n = directory, mode, n
        script = os.path.join(directory, "workload.py")
        self.go = os.path.join(directory, "go")
        self.out = os.path.join(directory, "result.json")
        for path in (self.go, self.out):
            if os.path.exists(path):
                os.unlink(path)
        own = (lambda p: p[len(root):]) if root else (lambda p: p)
        self.python = python
        self.argv = prefix + [python] + list(python_options) + [own(script), own(self.go), own(self.out), mode, str(n), str(Run.depth)]

    def result(self):
        with open(self.out) as f:
            return json.load(f)


def peak_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except IOError:
        return None
    return None


def run_plain(run):
    process = subprocess.Popen(run.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    open(run.go, "w").close()
    _, err = process.communicate()
    if process.returncode != 0:
        sys.exit("%s failed: %s" % (" ".join(run.argv), err.decode()[-800:]))
    return run.result()


def run_memray(run, memray, extra, root=None):
    """`memray` is the command that runs memray (a list), `root` the chroot it runs in."""
    output = os.path.join(run.directory, "memray.bin")
    if root:
        output = output[len(root):]
    argv = memray + ["run", "-q", "--force", "-o", output] + extra + run.argv[run.argv.index(run.python) + 1:]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # memray traces from the start; the go file only lets the loop begin
    open(run.go, "w").close()
    _, err = process.communicate()
    if process.returncode != 0:
        sys.exit("memray failed: %s" % err.decode()[-800:])
    return run.result()


def run_pytap(run, pytap, via, extra=(), bpf_stats=None):
    argv = [pytap, "memtrace", "--via", via, "--json"] + list(extra) + ["--"] + run.argv
    # stdout to a file: a report larger than a pipe's buffer would block pytap while this
    # script only watches it.
    stdout = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, universal_newlines=True)
    peak = 0
    # The rate line comes after one traced second: the probes are in.
    first = process.stderr.readline()
    while first.startswith("pytap: warning:"):
        first = process.stderr.readline()
    if "probe hits/s" not in first and via == "probes":
        _, err = process.communicate()
        sys.exit("pytap memtrace did not start: %s" % (first + err)[-800:])
    open(run.go, "w").close()
    stats = {}
    while process.poll() is None:
        peak = max(peak, peak_rss_kib(process.pid) or 0)
        if bpf_stats is not None:
            stats = bpf_program_stats(MEMTRACE_PROGRAMS) or stats
        time.sleep(0.02)
    if bpf_stats is not None:
        bpf_stats.append(stats)
    _, err = process.communicate()
    if process.returncode != 0:
        sys.exit("pytap memtrace failed (%d): %s" % (process.returncode, err[-800:]))
    stdout.seek(0)
    report = json.load(stdout)
    result = run.result()
    result["report"] = report
    result["peak_rss_kib"] = peak
    return result


MEMTRACE_PROGRAMS = ("on_call", "on_return")
BPF_PROG_GET_NEXT_ID, BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD = 11, 13, 15


def bpf_program_stats(names):
    """{name: (run_time_ns, run_cnt)} of the newest BPF programs loaded together (ids in a
    row) under `names` (kernel.bpf_stats_enabled must be 1 for the times), or {}."""
    libc = ctypes.CDLL(None, use_errno=True)

    def bpf(cmd, attr):
        return libc.syscall(321, cmd, ctypes.byref(attr), ctypes.sizeof(attr))

    found, next_id = {}, 0
    while True:
        attr = (ctypes.c_uint32 * 4)(next_id, 0, 0, 0)
        if bpf(BPF_PROG_GET_NEXT_ID, attr) != 0:
            break
        next_id = attr[1]
        fd = bpf(BPF_PROG_GET_FD_BY_ID, (ctypes.c_uint32 * 4)(next_id, 0, 0, 0))
        if fd < 0:
            continue
        info = ctypes.create_string_buffer(232)
        get = (ctypes.c_uint64 * 2)(fd | (232 << 32), ctypes.addressof(info))  # bpf_fd, info_len, info
        if bpf(BPF_OBJ_GET_INFO_BY_FD, get) == 0:
            name = info.raw[64:80].split(b"\0")[0].decode()
            if name in names:
                run_time, run_count = struct.unpack_from("<QQ", info.raw, 192)
                found[next_id] = (name, run_time, run_count)
        os.close(fd)
    for first in sorted(found, reverse=True):
        group = [found.get(first + i) for i in range(len(names))]
        if all(g is not None and g[0] == name for g, name in zip(group, names)):
            return {g[0]: (g[1], g[2]) for g in group}
    return {}


def allocator_object(python):
    """The object file holding the interpreter's _PyObject_Malloc (libpython or itself)."""
    maps = subprocess.run([python, "-c", "print(open('/proc/self/maps').read())"], stdout=subprocess.PIPE, universal_newlines=True).stdout
    for line in maps.splitlines():
        path = line.split()[-1]
        if re.search(r"/libpython[0-9.]+\.so", path):
            return os.path.realpath(path)
    return os.path.realpath(python)


def run_counting_uprobe(run, on_return=False):
    """One loop with an empty counting uprobe (or uretprobe) on _PyObject_Malloc: its
    result, with the probe's hits."""
    library = allocator_object(PYTHON)
    offset = file_offset(library, "_PyObject_Malloc")
    process = subprocess.Popen(run.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)  # the interpreter has started before the probe goes in
    fd = counting_uprobe(process.pid, library, offset, on_return)
    open(run.go, "w").close()
    process.wait()
    hits = int.from_bytes(os.read(fd, 8), "little")
    os.close(fd)
    if hits < run.n:
        sys.exit("the uprobe counted %d hits for %d rounds" % (hits, run.n))
    result = run.result()
    result["hits"] = hits
    return result


def spread(values, form="%.2f"):
    """median (min-max)"""
    return (form + " (" + form + "-" + form + ")") % (median(values), min(values), max(values))


def pytap_default_frames(pytap):
    """The traceback limit pytap's --via tracemalloc asks for by default (from its help)."""
    help_text = subprocess.run([pytap, "memtrace", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True).stdout
    found = re.search(r"\n\s+--frames <frames>.*?default: (\d+)", help_text, re.S)
    return int(found.group(1)) if found else 64


def pytap_supports_tracemalloc(pytap):
    help_text = subprocess.run([pytap, "memtrace", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True).stdout
    if "tracemalloc" not in help_text:
        return False
    check = subprocess.run([pytap, "memtrace", "--via", "tracemalloc", "-x", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return "not built" not in check.stderr


SID_MEMRAY = "/opt/memray-py3.14"


def sid_memray(version):
    """memray for sid's python3.14 (the same version as the host's, from PyPI's cp314
    wheels, installed with the venv's pip into a directory of the chroot): the command."""
    target = os.path.join(SID, SID_MEMRAY.lstrip("/"))
    if not os.path.exists(os.path.join(target, "memray")):
        print("installing memray %s for python3.14 into %s ..." % (version, target), file=sys.stderr)
        subprocess.check_call([os.path.join(VENV, "bin", "pip"), "install", "-q", "--target", target, "--python-version", "3.14",
                               "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                               "--platform", "manylinux2014_x86_64", "memray==%s" % version])
    return ["chroot", SID, "env", "PYTHONPATH=" + SID_MEMRAY, SID_PYTHON, "-m", "memray"]


def memray_binary():
    binary = os.path.join(VENV, "bin", "memray")
    if not os.path.exists(binary):
        print("making %s with memray from PyPI ..." % VENV, file=sys.stderr)
        subprocess.check_call([PYTHON, "-m", "venv", VENV])
        subprocess.check_call([os.path.join(VENV, "bin", "pip"), "install", "-q", "memray"])
    version = subprocess.run([os.path.join(VENV, "bin", "pip"), "show", "memray"], stdout=subprocess.PIPE, universal_newlines=True).stdout
    return binary, re.search(r"Version: (\S+)", version).group(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200000, help="rounds of the allocation loop")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--depth", type=int, default=1, help="Python frames the loop runs under (1: module level)")
    parser.add_argument("--rows", default="memray,probes,tracemalloc", help="which rows: memray, probes, tracemalloc (comma-separated)")
    parser.add_argument("--tracemalloc-frames", default="", help="more traceback limits for plain python3.14 -X tracemalloc=N rows (comma-separated; 1 and pytap's default always run)")
    parser.add_argument("--bpf-stats", action="store_true", help="also the BPF run time per memtrace program hit (sets kernel.bpf_stats_enabled during the probes' runs: every BPF program on the machine then pays for the clock reads)")
    args = parser.parse_args()
    rows_wanted = set(args.rows.split(","))
    if os.geteuid() != 0:
        sys.exit("run as root: pytap memtrace and perf uprobes need it")
    pytap = pytap_binary()
    directory = tempfile.mkdtemp(prefix="memtrace-bench-")
    os.chmod(directory, 0o755)
    with open(os.path.join(directory, "workload.py"), "w") as f:
        f.write(WORKLOAD)
    n = args.iterations
    Run.depth = args.depth
    load_before = open("/proc/loadavg").read().split()[:3]
    rows, notes = [], []

    def host_run(**kwargs):
        return Run(directory, [], PYTHON, "alloc", n, **kwargs)

    # Every repeat runs each variant once, one after the other, so the machine's load moves
    # them together; the per-repeat ratios are the measure.
    base, memray_rows = [], {}
    if "memray" in rows_wanted:
        memray, memray_version = memray_binary()
        variants = [("memray %s" % memray_version, []),
                    ("memray %s --trace-python-allocators" % memray_version, ["--trace-python-allocators"])]
        for _ in range(args.repeat):
            bare = run_plain(host_run())["seconds"]
            base.append(bare)
            for label, extra in variants:
                memray_rows.setdefault(label, []).append(run_memray(host_run(), [memray], extra)["seconds"] / bare)
    probe_runs = []
    if "probes" in rows_wanted:
        stats_setting = "/proc/sys/kernel/bpf_stats_enabled"
        stats_before = open(stats_setting).read().strip() if args.bpf_stats else None
        if args.bpf_stats:
            with open(stats_setting, "w") as f:
                f.write("1")
        try:
            for _ in range(args.repeat):
                bare = run_plain(host_run())["seconds"]
                base.append(bare)
                stats = [] if args.bpf_stats else None
                traced = run_pytap(host_run(), pytap, "probes", bpf_stats=stats)
                entry = run_counting_uprobe(host_run())
                ret = run_counting_uprobe(host_run(), on_return=True)
                probe_runs.append((bare, traced, entry, ret, stats[0] if stats else {}))
        finally:
            if args.bpf_stats:
                with open(stats_setting, "w") as f:
                    f.write(stats_before)
    baseline = median(base) if base else run_plain(host_run())["seconds"]
    rows.append(["python3.12 (no tracing)", "%.3f" % baseline, "1.0x", "", "", ""])
    for label, ratios in memray_rows.items():
        rows.append([label, "", spread(ratios, "%.1f") + "x", "", "", ""])
    if probe_runs:
        slowdowns, hit_costs, entry_costs, return_costs, ratios, mix_ratios, bpf_per_hit = [], [], [], [], [], [], []
        for bare, traced, entry, ret, stats in probe_runs:
            report = traced["report"]
            hit = (traced["seconds"] - bare) / max(1, report["probe_hits"])
            entry_cost = (entry["seconds"] - bare) / entry["hits"]
            return_cost = (ret["seconds"] - bare) / ret["hits"]
            # memtrace's hits: per allocation an entry and a return (one trap each, as one
            # empty uretprobe costs: it traps at the entry to catch the return), per free an entry.
            returns = report["allocations"]
            mix = (returns * return_cost + max(0, report["probe_hits"] - 2 * returns) * entry_cost) / max(1, report["probe_hits"])
            slowdowns.append(traced["seconds"] / bare)
            hit_costs.append(hit * 1e6)
            entry_costs.append(entry_cost * 1e6)
            return_costs.append(return_cost * 1e6)
            ratios.append(hit / entry_cost if entry_cost > 0 else float("nan"))
            mix_ratios.append(hit / mix if mix > 0 else float("nan"))
            if stats:
                total_ns = sum(t for t, _ in stats.values())
                bpf_per_hit.append([total_ns / max(1, sum(c for _, c in stats.values())) / 1000] +
                                   [stats[name][0] / max(1, stats[name][1]) / 1000 for name in MEMTRACE_PROGRAMS])
        middle = sorted(probe_runs, key=lambda r: r[1]["seconds"] / r[0])[len(probe_runs) // 2][1]
        report = middle["report"]
        events = report["allocations"] + report["frees"]
        rows.append(["pytap memtrace --via probes", "%.3f" % middle["seconds"], spread(slowdowns, "%.1f") + "x",
                     "%d" % (events / middle["seconds"]), spread(hit_costs, "%.1f"), "%.1f" % (max(r[1]["peak_rss_kib"] for r in probe_runs) / 1024)])
        rows.append(["empty uprobe on _PyObject_Malloc", "", "", "", spread(entry_costs, "%.1f"), ""])
        rows.append(["empty uretprobe on _PyObject_Malloc", "", "", "", spread(return_costs, "%.1f"), ""])
        notes.append("memtrace: %d probe hits, %d allocations, %d frees, %d lost in the middle run" % (
            report["probe_hits"], report["allocations"], report["frees"], report["lost"]))
        notes.append("memtrace cost per hit / empty uprobe: %s; / empty probes in memtrace's mix of entries and returns: %s (goal <= 1.5x)"
                     % (spread(ratios), spread(mix_ratios)))
        if bpf_per_hit:
            notes.append("BPF run time per memtrace program hit (kernel.bpf_stats_enabled): %s us; on_call (entries, frees) %s us, on_return %s us"
                         % tuple(spread([b[i] for b in bpf_per_hit]) for i in range(3)))

    if "tracemalloc" in rows_wanted and os.path.exists(os.path.join(SID, SID_PYTHON.lstrip("/"))):
        sid_directory = tempfile.mkdtemp(prefix="memtrace-bench-", dir=os.path.join(SID, "tmp"))
        os.chmod(sid_directory, 0o755)
        with open(os.path.join(sid_directory, "workload.py"), "w") as f:
            f.write(WORKLOAD)

        def sid_run(**kwargs):
            return Run(sid_directory, ["chroot", SID], SID_PYTHON, "alloc", n, root=SID, **kwargs)

        frames = pytap_default_frames(pytap)
        variants = []
        if "memray" in rows_wanted:
            memray_314 = sid_memray(memray_version)
            variants += [("memray %s on python3.14" % memray_version, lambda: run_memray(sid_run(), memray_314, [], root=SID)),
                         ("memray %s --trace-python-allocators on python3.14" % memray_version,
                          lambda: run_memray(sid_run(), memray_314, ["--trace-python-allocators"], root=SID))]
        # tracemalloc's own cost, started at start-up as -X does (the loop alone is timed).
        for limit in sorted(set([1, frames] + [int(f) for f in args.tracemalloc_frames.split(",") if f])):
            label = "python3.14 -X tracemalloc=%d%s" % (limit, " (pytap's default limit)" if limit == frames else "")
            variants.append((label, lambda limit=limit: run_plain(sid_run(python_options=["-X", "tracemalloc=%d" % limit]))))
        peaks = []
        if pytap_supports_tracemalloc(pytap):
            def traced():
                result = run_pytap(sid_run(), pytap, "tracemalloc")
                peaks.append(result["peak_rss_kib"])
                return result
            variants.append(("pytap memtrace --via tracemalloc (the 3.14 default)", traced))
        sid_base, sid_rows = [], {}
        for _ in range(args.repeat):
            bare = run_plain(sid_run())["seconds"]
            sid_base.append(bare)
            for label, run in variants:
                sid_rows.setdefault(label, []).append(run()["seconds"] / bare)
        rows.append(["sid python3.14 (no tracing)", "%.3f" % median(sid_base), "1.0x", "", "", ""])
        for label, ratios in sid_rows.items():
            peak = "%.1f" % (max(peaks) / 1024) if label.startswith("pytap") and peaks else ""
            rows.append([label, "", spread(ratios, "%.1f") + "x", "", "", peak])
        if not pytap_supports_tracemalloc(pytap):
            rows.append(["pytap memtrace --via tracemalloc (3.14)", "not supported by this pytap", "", "", "", ""])

    print("allocation loop of %d rounds at depth %d (python3.12 unless said), %d repeats: slowdown and us/hit as median (min-max) of per-repeat ratios; load average before %s, after %s"
          % (n, args.depth, args.repeat, " ".join(load_before), " ".join(open("/proc/loadavg").read().split()[:3])))
    print(table(["tracer", "loop s", "slowdown", "events/s", "us/hit", "peak RSS MiB"], rows))
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
