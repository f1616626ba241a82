"""What `pytap callgraph` and `pytap py-callgraph` cost: the time to attach a probe to every
function of libpython, and the target's slowdown per traced call, next to the raw cost of
empty uprobes on the same addresses, measured in the same run on the same machine
(the goals: every libpython function attached in under 2 s; per-call cost within 1.5x of
the raw probes).

usage: sudo python3 bench/callgraph_bench.py [--c-rounds N] [--py-rounds N] [--rounds N] [--repeat R]
($PYTAP_BIN picks the pytap under test, as in the other benchmarks.)

The workload waits in read(2) on its stdin, then times one loop and waits again (the raw
probes are counted around the loop only). For `callgraph` the loop runs in
`exec()`, so the trigger (`builtin_exec`) encloses it and every probe hit of the timed loop
is recorded: per-call cost = (traced - bare) / calls recorded, a call being one entry and
one return. For `py-callgraph` the trigger is `trigger_root`, which calls `leaf` N times.
The raw costs: the same loop with counting perf uprobes (no BPF program): an uprobe and a
uretprobe on the entry of one function (builtin_sorted, or the eval function for 3.10's
eval-function probes), and for 3.11+, empty uprobes on the bytecode handlers py-callgraph
probes (a handler's first instruction is stepped out of line, a function's first `push`
is emulated: both raw costs are printed). (probed - bare) / hits counted.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from common import address_to_offset, counting_uprobe, file_offset, median, pytap_binary, symbol_value, table

SID = "/var/lib/pytap/sid"
PYENV = "/root/.pyenv/versions"

WORKLOAD = r'''
import json, os, sys, time
out, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = [3, 1, 2]

def c_loop(n):
    for i in range(n):
        sorted(data)

def leaf(i):
    return i

def trigger_root(n):
    for i in range(n):
        leaf(i)

# Blocked in read(2) until the probes are in, and again after the loop until they are
# counted: no probed function runs while the bench waits.
sys.stdin.readline()
start = time.perf_counter()
if mode == "c":
    exec("c_loop(n)")
else:
    trigger_root(n)
elapsed = time.perf_counter() - start
with open(out + ".tmp", "w") as f:
    json.dump({"seconds": elapsed}, f)
os.rename(out + ".tmp", out)
sys.stdin.read()
'''

# The opcodes py-callgraph probes on 3.11+ (Tracers/OpcodeHandlers.swift): the ones a
# build has, numbered by the interpreter itself.
HANDLER_OPCODES = ["RESUME", "RESUME_QUICK", "RESUME_CHECK", "RESUME_CHECK_JIT", "INSTRUMENTED_RESUME",
                   "RETURN_VALUE", "RETURN_CONST", "YIELD_VALUE", "INSTRUMENTED_RETURN_VALUE",
                   "INSTRUMENTED_RETURN_CONST", "INSTRUMENTED_YIELD_VALUE"]
OPCODE_NUMBERS = r'''
import dis, json, opcode
known = dict(opcode.opmap)
known.update(getattr(dis, "_all_opmap", {}))
known.update(getattr(opcode, "_specialized_opmap", {}))
print(json.dumps(known))
'''


class Interpreter:
    def __init__(self, label, python, root=None):
        self.label, self.python, self.root = label, python, root
        self.prefix = ["chroot", root] if root else []

    def host(self, path):
        return os.path.join(self.root, path.lstrip("/")) if self.root else path

    def own(self, path):
        return path[len(self.root):] if self.root else path

    def exists(self):
        return os.path.exists(self.host(self.python))

    def code_object(self):
        """The object file holding the interpreter (libpython or the executable), host path."""
        maps = subprocess.run(self.prefix + [self.python, "-c", "print(open('/proc/self/maps').read())"],
                              stdout=subprocess.PIPE, universal_newlines=True).stdout
        for line in maps.splitlines():
            path = line.split()[-1] if line.strip() else ""
            if re.search(r"/libpython[0-9.]+d?\.so", path):
                return os.path.realpath(self.host(path))
        return os.path.realpath(self.host(self.python))

    def symbol_file(self, path):
        """`path`, or its debug file (by build-id) when `path` has no .symtab."""
        if symbol_value(path, "PyTraceBack_Here") is not None and ".symtab" in subprocess.run(
                ["readelf", "-W", "-S", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout:
            return path
        notes = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
        build_id = re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)
        debug = self.host("/usr/lib/debug/.build-id/%s/%s.debug" % (build_id[:2], build_id[2:]))
        return debug if os.path.exists(debug) else path


class Bench:
    def __init__(self, interpreter, n):
        self.interpreter, self.n = interpreter, n
        parent = os.path.join(interpreter.root, "tmp") if interpreter.root else None
        self.directory = tempfile.mkdtemp(prefix="callgraph-bench-", dir=parent)
        os.chmod(self.directory, 0o755)
        with open(os.path.join(self.directory, "workload.py"), "w") as f:
            f.write(WORKLOAD)
        self.out = os.path.join(self.directory, "result.json")

    def start(self, mode, n=None):
        if os.path.exists(self.out):
            os.unlink(self.out)
        i = self.interpreter
        argv = i.prefix + [i.python, i.own(os.path.join(self.directory, "workload.py")), i.own(self.out), mode, str(n or self.n)]
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)  # the interpreter has started and loaded its libraries
        return process

    @staticmethod
    def go(process):
        process.stdin.write(b"go\n")
        process.stdin.flush()

    def wait_for_loop(self, process):
        while not os.path.exists(self.out):
            if process.poll() is not None:
                sys.exit("the workload failed: %s" % process.stderr.read().decode()[-800:])
            time.sleep(0.002)

    def finish(self, process):
        _, err = process.communicate()  # closes its stdin: it exits
        if process.returncode != 0:
            sys.exit("the workload failed: %s" % err.decode()[-800:])
        with open(self.out) as f:
            return json.load(f)["seconds"]

    def bare(self, mode, repeat):
        times = []
        for _ in range(repeat):
            process = self.start(mode)
            self.go(process)
            times.append(self.finish(process))
        return median(times)

    def probed(self, mode, probes, repeat):
        """Median loop seconds with counting uprobes at `probes` [(path, offset, on_return)],
        and the hits of each probe in one loop."""
        times, hits = [], None
        for _ in range(repeat):
            process = self.start(mode)
            fds = [counting_uprobe(process.pid, path, offset, on_return) for path, offset, on_return in probes]
            before = [int.from_bytes(os.read(fd, 8), "little") for fd in fds]
            self.go(process)
            self.wait_for_loop(process)
            hits = [int.from_bytes(os.read(fd, 8), "little") - b for fd, b in zip(fds, before)]
            times.append(self.finish(process))
            for fd in fds:
                os.close(fd)
        return median(times), hits

    def traced(self, mode, argv, n=None):
        """One traced loop: (loop seconds, attach line, closing line, json report)."""
        process = self.start(mode, n)
        tracer = subprocess.Popen(argv + ["-x", str(process.pid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True)
        attach = tracer.stderr.readline()
        while attach.startswith("pytap: warning:"):
            attach = tracer.stderr.readline()
        if not attach.startswith("pytap: probing"):
            process.kill()
            out, err = tracer.communicate()
            sys.exit("%s did not attach: %s" % (" ".join(argv), (attach + err)[-800:]))
        self.go(process)
        seconds = self.finish(process)
        out, err = tracer.communicate()
        if tracer.returncode != 0:
            sys.exit("%s failed (%d): %s" % (" ".join(argv), tracer.returncode, err[-800:]))
        closing = [line for line in err.splitlines() if " traced, " in line]
        return seconds, attach.strip(), closing[-1] if closing else "", json.loads(out)


def attach_seconds(line):
    match = re.search(r"([0-9.]+) (ms|s)\)", line)
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def events_of(closing):
    match = re.search(r"traced, (\d+) events(?:, (\d+) dropped)?", closing)
    return int(match.group(1)), int(match.group(2) or 0)


def count_calls(node):
    return 1 + sum(count_calls(child) for child in node["calls"])


def call_names(node):
    yield node["name"]
    for child in node["calls"]:
        for name in call_names(child):
            yield name


def symbol_offset(path, name):
    value = symbol_value(path, name)
    return None if value is None else address_to_offset(path, value)


def median_traced(bench, mode, argv, repeat):
    runs = [bench.traced(mode, argv) for _ in range(repeat)]
    return sorted(runs, key=lambda r: r[0])[len(runs) // 2]


def first_load_address(path):
    headers = subprocess.run(["readelf", "-W", "-l", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    return min(int(line.split()[2], 16) for line in headers.splitlines() if line.split()[:1] == ["LOAD"]) & ~0xfff


def handler_offsets(bench, path, symbols):
    """File offsets of the distinct bytecode handlers of HANDLER_OPCODES, read from the
    relocated `opcode_targets` of a running interpreter."""
    interpreter = bench.interpreter
    numbers = json.loads(subprocess.run(interpreter.prefix + [interpreter.python, "-c", OPCODE_NUMBERS],
                                        stdout=subprocess.PIPE, universal_newlines=True).stdout)
    table_address = symbol_value(symbols, "opcode_targets", kind="OBJECT")
    if table_address is None:
        sys.exit("no opcode_targets in %s" % symbols)
    process = bench.start("py", 1)
    try:
        base = None
        with open("/proc/%d/maps" % process.pid) as f:
            for line in f:
                parts = line.split()
                # maps names files as seen from the reader's root: the host path.
                if len(parts) >= 6 and os.path.realpath(parts[5]) == path and int(parts[2], 16) == 0:
                    base = int(parts[0].split("-")[0], 16)
                    break
        bias = base - first_load_address(path)
        with open("/proc/%d/mem" % process.pid, "rb") as mem:
            mem.seek(bias + table_address)
            raw = mem.read(256 * 8)
    finally:
        bench.go(process)
        bench.finish(process)
    targets = [int.from_bytes(raw[i * 8:i * 8 + 8], "little") - bias for i in range(256)]
    handlers = sorted({targets[numbers[name]] for name in HANDLER_OPCODES if name in numbers})
    return [address_to_offset(path, address) for address in handlers]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--c-rounds", type=int, default=10000, help="rounds of sorted() traced by callgraph")
    parser.add_argument("--rounds", type=int, default=100000, help="rounds of sorted() under one empty probe")
    parser.add_argument("--py-rounds", type=int, default=20000,
                        help="calls traced by py-callgraph (its user side takes ~1 ms a call in a debug build)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: pytap's probes and perf uprobes need it")
    pytap = pytap_binary()
    repeat = args.repeat
    load_before = " ".join(open("/proc/loadavg").read().split()[:3])
    rows, notes = [], []

    # callgraph on pyenv 3.12 (shared libpython), every function.
    py312 = Interpreter("pyenv 3.12", PYENV + "/3.12.1/bin/python3.12")
    bench = Bench(py312, args.c_rounds)
    library = py312.code_object()
    bare = bench.bare("c", repeat)
    seconds, attach, closing, report = median_traced(bench, "c", [pytap, "callgraph", "-t", "builtin_exec", "--json", "--max-events", "100000000"], repeat)
    functions = int(re.search(r"probing (\d+) functions", attach).group(1))
    calls = sum(count_calls(invocation["call"]) for invocation in report)
    events, dropped = events_of(closing)
    cost = (seconds - bare) / calls
    # The raw cost on the same addresses: an empty uprobe and uretprobe on every function
    # the traced loop called.
    names = sorted(set(name for invocation in report for name in call_names(invocation["call"])))
    offsets = sorted(set(offset for offset in (symbol_offset(library, name) for name in names) if offset is not None))
    probes = [(library, offset, on_return) for offset in offsets for on_return in (False, True)]
    raw_seconds, hits = bench.probed("c", probes, repeat)
    raw_calls = sum(hits[0::2])
    raw_pair = (raw_seconds - bare) / raw_calls
    rows.append(["callgraph, %s, all %d functions" % (py312.label, functions), "%.0f" % (attach_seconds(attach) * 1000),
                 "%.3f / %.3f" % (bare, seconds), "%d" % calls, "%.2f" % (cost * 1e6),
                 "%.2f (uprobe+uretprobe on the %d functions hit)" % (raw_pair * 1e6, len(offsets)), "%.2fx" % (cost / raw_pair)])
    notes.append("callgraph 3.12: %s; %s; %d events, %d dropped; raw: %d calls counted in %.3f s" % (
        attach, closing, events, dropped, raw_calls, raw_seconds))
    # For reference, one function with an emulated first instruction (`push`).
    bench = Bench(py312, args.rounds)
    sorted_bare = bench.bare("c", repeat)
    sorted_offset = file_offset(library, "builtin_sorted")
    sorted_seconds, hits = bench.probed("c", [(library, sorted_offset, False), (library, sorted_offset, True)], repeat)
    rows.append(["  empty uprobe+uretprobe on builtin_sorted only", "", "%.3f / %.3f" % (sorted_bare, sorted_seconds), "%d" % hits[0],
                 "", "%.2f" % ((sorted_seconds - sorted_bare) / hits[0] * 1e6), ""])
    print(rows[-2], rows[-1], file=sys.stderr)

    # py-callgraph: 3.10 (eval-function probes), 3.12 and sid 3.14 (bytecode handlers).
    for interpreter in [Interpreter("pyenv 3.10", PYENV + "/3.10.13/bin/python3.10"), py312,
                        Interpreter("sid 3.14", "/usr/bin/python3.14", root=SID)]:
        if not interpreter.exists():
            rows.append(["py-callgraph, %s" % interpreter.label, "not installed", "", "", "", "", ""])
            continue
        bench = Bench(interpreter, args.py_rounds)
        path = interpreter.code_object()
        bare = bench.bare("py", repeat)
        seconds, attach, closing, report = median_traced(bench, "py", [pytap, "py-callgraph", "-t", "trigger_root", "--json", "--max-events", "100000000"], repeat)
        calls = sum(count_calls(invocation["call"]) for invocation in report)
        cost = (seconds - bare) / calls
        symbols = interpreter.symbol_file(path)
        if interpreter.label == "pyenv 3.10":
            offset = file_offset(path, "_PyEval_EvalFrameDefault")
            raw_seconds, hits = bench.probed("py", [(path, offset, False), (path, offset, True)], repeat)
            raw = (raw_seconds - bare) / hits[0]
            raw_text = "%.2f (uprobe+uretprobe, eval function)" % (raw * 1e6)
        else:
            # A call is a start and a leave handler hit: raw = two handler hits.
            offsets = handler_offsets(bench, path, symbols)
            raw_seconds, hits = bench.probed("py", [(path, offset, False) for offset in offsets], repeat)
            raw = 2 * (raw_seconds - bare) / sum(hits)
            # A Python call makes no C call on 3.11+: the entry uprobe is timed on sorted().
            sorted_offset = address_to_offset(path, symbol_value(symbols, "builtin_sorted"))
            bench = Bench(interpreter, args.rounds)
            entry_seconds, entry_hits = bench.probed("c", [(path, sorted_offset, False)], repeat)
            c_bare = bench.bare("c", repeat)
            entry = (entry_seconds - c_bare) / entry_hits[0]
            raw_text = "%.2f (2 handler uprobes; 1 entry uprobe: %.2f)" % (raw * 1e6, entry * 1e6)
        rows.append(["py-callgraph, %s" % interpreter.label, "%.0f" % (attach_seconds(attach) * 1000),
                     "%.3f / %.3f" % (bare, seconds), "%d" % calls, "%.2f" % (cost * 1e6), raw_text, "%.2fx" % (cost / raw)])
        notes.append("py-callgraph %s: %s; %s" % (interpreter.label, attach, closing))
        print(rows[-1], file=sys.stderr)

    # Debian's static python3.11: attach time for every function of the executable.
    static = Interpreter("Debian static 3.11", "/usr/bin/python3.11")
    if static.exists():
        bench = Bench(static, 100)
        seconds, attach, closing, report = bench.traced("c", [pytap, "callgraph", "-t", "builtin_exec", "--json"])
        functions = int(re.search(r"probing (\d+) functions", attach).group(1))
        rows.append(["callgraph, %s, all %d functions" % (static.label, functions), "%.0f" % (attach_seconds(attach) * 1000),
                     "", "", "", "", ""])
        notes.append("callgraph static 3.11: %s; %s" % (attach, closing))

    print("pytap callgraph / py-callgraph cost: %d rounds of sorted() traced by callgraph, %d calls by py-callgraph, %d "
          "rounds under one empty probe; median of %d; machine shared and loaded (load average before: %s, after: %s)"
          % (args.c_rounds, args.py_rounds, args.rounds, repeat, load_before, " ".join(open("/proc/loadavg").read().split()[:3])))
    print(table(["trace", "attach ms", "loop s bare / traced", "calls traced", "us/call", "raw us/call", "ratio"], rows))
    print("callgraph: a call = sorted() and the C functions it calls, each an entry and a return probe; "
          "py-callgraph: a call = leaf(), a start and a leave record (goals: attach < 2 s, ratio <= 1.5x)")
    for note in notes:
        print("  " + note)


if __name__ == "__main__":
    main()
