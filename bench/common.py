"""Shared helpers for pytap's benchmarks: the py-spy venv, timing, tables."""
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.environ.get("PYTAP_BENCH_VENV", os.path.join(ROOT, "bench", ".venv"))
DEFAULT_PYTHON = "/root/.pyenv/versions/3.12.1/bin/python3.12"


def pytap_binary():
    path = os.environ.get("PYTAP_BIN") or os.path.join(ROOT, ".build", "release", "pytap")
    if not os.access(path, os.X_OK):
        sys.exit("no pytap at %s: build it with `swift build -c release --static-swift-stdlib`" % path)
    return path


def py_spy():
    """py-spy from PyPI, in a venv this script makes (once)."""
    binary = os.path.join(VENV, "bin", "py-spy")
    if not os.path.exists(binary):
        print("making %s with py-spy from PyPI ..." % VENV, file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([os.path.join(VENV, "bin", "pip"), "install", "-q", "py-spy"])
    version = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
    return binary, version


def time_command(argv, repeat):
    """Wall-clock seconds of each of `repeat` runs; fails on a non-zero exit."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            sys.exit("%s failed: %s" % (" ".join(argv), result.stderr.decode()[-500:]))
    return times


def median(values):
    return statistics.median(values)


def table(headers, rows):
    widths = [max(len(str(h)), max((len(str(r[i])) for r in rows), default=0)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return "\n".join(out)
