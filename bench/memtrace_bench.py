"""What tracing allocations costs an allocation-heavy program: `pytap memtrace --via probes`
against memray (with and without --trace-python-allocators), all launching the same
workload, in one run; plus the events per second pytap sustains, its peak memory, and the
raw cost of one uprobe hit on this machine, measured in the same run, to compare
memtrace's cost per probe hit with (the goal: within 1.5x).

usage: sudo python3 bench/memtrace_bench.py [--iterations N] [--repeat R]
memray comes from PyPI into a venv this script makes (/var/lib/pytap/bench-venv, or
$PYTAP_BENCH_VENV) from the interpreter under test. A `--via tracemalloc` row on sid's
python3.14 runs when the pytap under test supports it (`pytap memtrace --help`).

The workload waits for a go file before its timed loop, so each tracer is attached (pytap:
its first rate line, after one traced second) before the loop starts; the loop's own
wall time is the measure. The raw uprobe cost: the same loop with one counting perf
uprobe (no BPF program) on the entry of the same _PyObject_Malloc memtrace probes (the
same instruction, a push the kernel emulates; memtrace's free probe sits on an emulated jump
too, docs/DESIGN.md); (probed - bare) / hits counted. memtrace's cost per
hit is (traced - bare) / its probe hits (entry, return and free probes).
"""
import argparse
import json
import os
import re
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
start = time.perf_counter()
# About three object-allocator blocks per round (a dict, a str, an int beyond the small
# ones), freed at once except one round in a hundred.
for i in range(n):
    record = {"id": i + 1000, "name": str(i)}
    if i % 100 == 0:
        kept.append(record)
elapsed = time.perf_counter() - start
with open(out + ".tmp", "w") as f:
    json.dump({"seconds": elapsed, "rounds": n}, f)
os.rename(out + ".tmp", out)
'''


class Run:
    """One launch of the workload under `argv` (the workload's own argv appended)."""

    def __init__(self, directory, prefix, python, mode, n, root=None):
        self.directory, self.mode, self.n = directory, mode, n
        script = os.path.join(directory, "workload.py")
        self.go = os.path.join(directory, "go")
        self.out = os.path.join(directory, "result.json")
        for path in (self.go, self.out):
            if os.path.exists(path):
                os.unlink(path)
        own = (lambda p: p[len(root):]) if root else (lambda p: p)
        self.argv = prefix + [python, own(script), own(self.go), own(self.out), mode, str(n)]

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


def run_memray(run, memray, extra):
    output = os.path.join(run.directory, "memray.bin")
    argv = [memray, "run", "-q", "--force", "-o", output] + extra + run.argv[run.argv.index(PYTHON) + 1:]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # memray traces from the start; the go file only lets the loop begin
    open(run.go, "w").close()
    _, err = process.communicate()
    if process.returncode != 0:
        sys.exit("memray failed: %s" % err.decode()[-800:])
    return run.result()


def run_pytap(run, pytap, via):
    argv = [pytap, "memtrace", "--via", via, "--json", "--"] + run.argv
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    peak = 0
    # The rate line comes after one traced second: the probes are in.
    first = process.stderr.readline()
    while first.startswith("pytap: warning:"):
        first = process.stderr.readline()
    if "probe hits/s" not in first and via == "probes":
        out, err = process.communicate()
        sys.exit("pytap memtrace did not start: %s" % (first + err)[-800:])
    open(run.go, "w").close()
    while process.poll() is None:
        peak = max(peak, peak_rss_kib(process.pid) or 0)
        time.sleep(0.02)
    out, err = process.communicate()
    if process.returncode != 0:
        sys.exit("pytap memtrace failed (%d): %s" % (process.returncode, err[-800:]))
    report = json.loads(out)
    result = run.result()
    result["report"] = report
    result["peak_rss_kib"] = peak
    return result


def allocator_object(python):
    """The object file holding the interpreter's _PyObject_Malloc (libpython or itself)."""
    maps = subprocess.run([python, "-c", "print(open('/proc/self/maps').read())"], stdout=subprocess.PIPE, universal_newlines=True).stdout
    for line in maps.splitlines():
        path = line.split()[-1]
        if re.search(r"/libpython[0-9.]+\.so", path):
            return os.path.realpath(path)
    return os.path.realpath(python)


def raw_uprobe_cost(directory, n, repeat, baseline, on_return=False):
    """Seconds per hit of an empty uprobe (or uretprobe) on _PyObject_Malloc, the hits of
    one loop, and the loop's time."""
    library = allocator_object(PYTHON)
    offset = file_offset(library, "_PyObject_Malloc")
    probed, hits = [], 0
    for _ in range(repeat):
        run = Run(directory, [], PYTHON, "alloc", n)
        process = subprocess.Popen(run.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)  # the interpreter has started before the probe goes in
        fd = counting_uprobe(process.pid, library, offset, on_return)
        open(run.go, "w").close()
        process.wait()
        hits = int.from_bytes(os.read(fd, 8), "little")
        os.close(fd)
        if hits < n:
            sys.exit("the uprobe counted %d hits for %d rounds" % (hits, n))
        probed.append(run.result()["seconds"])
    return (median(probed) - baseline) / hits, hits, median(probed)


def pytap_supports_tracemalloc(pytap):
    help_text = subprocess.run([pytap, "memtrace", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True).stdout
    if "tracemalloc" not in help_text:
        return False
    check = subprocess.run([pytap, "memtrace", "--via", "tracemalloc", "-x", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return "not built" not in check.stderr


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
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: pytap memtrace and perf uprobes need it")
    pytap = pytap_binary()
    memray, memray_version = memray_binary()
    directory = tempfile.mkdtemp(prefix="memtrace-bench-")
    os.chmod(directory, 0o755)
    with open(os.path.join(directory, "workload.py"), "w") as f:
        f.write(WORKLOAD)
    n = args.iterations
    print("load average before: %s" % open("/proc/loadavg").read().split()[:3], file=sys.stderr)

    base = [run_plain(Run(directory, [], PYTHON, "alloc", n))["seconds"] for _ in range(args.repeat)]
    rows = []
    baseline = median(base)
    rows.append(["python3.12 (no tracing)", "%.3f" % baseline, "1.0x", "", "", ""])
    for label, extra in [("memray %s" % memray_version, []),
                         ("memray %s --trace-python-allocators" % memray_version, ["--trace-python-allocators"])]:
        times = [run_memray(Run(directory, [], PYTHON, "alloc", n), memray, extra)["seconds"] for _ in range(args.repeat)]
        rows.append([label, "%.3f" % median(times), "%.1fx" % (median(times) / baseline), "", "", ""])

    traced = [run_pytap(Run(directory, [], PYTHON, "alloc", n), pytap, "probes") for _ in range(args.repeat)]
    seconds = median([t["seconds"] for t in traced])
    middle = sorted(traced, key=lambda t: t["seconds"])[len(traced) // 2]
    report = middle["report"]
    events = report["allocations"] + report["frees"]
    hit_cost = (seconds - baseline) / max(1, report["probe_hits"])
    rows.append(["pytap memtrace --via probes", "%.3f" % seconds, "%.1fx" % (seconds / baseline),
                 "%d" % (events / seconds), "%.1f" % (hit_cost * 1e6), "%.1f" % (max(t["peak_rss_kib"] for t in traced) / 1024)])

    uprobe_cost, hits, probed_seconds = raw_uprobe_cost(directory, n, args.repeat, baseline)
    rows.append(["empty uprobe on _PyObject_Malloc (%d hits)" % hits, "%.3f" % probed_seconds, "%.1fx" % (probed_seconds / baseline),
                 "", "%.1f" % (uprobe_cost * 1e6), ""])
    uretprobe_cost, hits, probed_seconds = raw_uprobe_cost(directory, n, args.repeat, baseline, on_return=True)
    rows.append(["empty uretprobe on _PyObject_Malloc (%d hits)" % hits, "%.3f" % probed_seconds, "%.1fx" % (probed_seconds / baseline),
                 "", "%.1f" % (uretprobe_cost * 1e6), ""])
    # memtrace's hits: per allocation an entry and a return (one trap each, as one empty
    # uretprobe costs: it traps at the entry to catch the return), per free an entry.
    returns = report["allocations"]
    raw_mix = (returns * uretprobe_cost + max(0, report["probe_hits"] - 2 * returns) * uprobe_cost) / max(1, report["probe_hits"])

    if os.path.exists(os.path.join(SID, SID_PYTHON.lstrip("/"))):
        sid_directory = tempfile.mkdtemp(prefix="memtrace-bench-", dir=os.path.join(SID, "tmp"))
        os.chmod(sid_directory, 0o755)
        with open(os.path.join(sid_directory, "workload.py"), "w") as f:
            f.write(WORKLOAD)
        prefix = ["chroot", SID]
        sid_base = median([run_plain(Run(sid_directory, prefix, SID_PYTHON, "alloc", n, root=SID))["seconds"] for _ in range(args.repeat)])
        rows.append(["sid python3.14 (no tracing)", "%.3f" % sid_base, "1.0x", "", "", ""])
        if pytap_supports_tracemalloc(pytap):
            sid_traced = [run_pytap(Run(sid_directory, prefix, SID_PYTHON, "alloc", n, root=SID), pytap, "tracemalloc") for _ in range(args.repeat)]
            sid_seconds = median([t["seconds"] for t in sid_traced])
            rows.append(["pytap memtrace --via tracemalloc (3.14)", "%.3f" % sid_seconds, "%.1fx" % (sid_seconds / sid_base), "", "",
                         "%.1f" % (max(t["peak_rss_kib"] for t in sid_traced) / 1024)])
        else:
            rows.append(["pytap memtrace --via tracemalloc (3.14)", "not supported by this pytap", "", "", "", ""])

    print("allocation loop of %d rounds (python3.12 unless said), median of %d, load average after: %s"
          % (n, args.repeat, " ".join(open("/proc/loadavg").read().split()[:3])))
    print(table(["tracer", "loop s", "slowdown", "events/s", "us/hit", "peak RSS MiB"], rows))
    print("memtrace: %d probe hits, %d allocations, %d frees, %d lost in the middle run" % (
        report["probe_hits"], report["allocations"], report["frees"], report["lost"]))
    print("memtrace cost per hit / empty uprobe = %.2fx; / empty probes in memtrace's mix of entries and returns (%.1f us) = %.2fx (goal <= 1.5x); machine shared and loaded: see the load averages"
          % (hit_cost / uprobe_cost if uprobe_cost > 0 else float("nan"), raw_mix * 1e6, hit_cost / raw_mix if raw_mix > 0 else float("nan")))


if __name__ == "__main__":
    main()
