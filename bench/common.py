"""Shared helpers for pytap's benchmarks: the py-spy venv, timing, tables."""
import ctypes
import functools
import os
import re
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


# perf_event_open(2) with the uprobe PMU: a counting uprobe, no BPF program.
class PerfEventAttr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
                ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
                ("wakeup_events", ctypes.c_uint32), ("bp_type", ctypes.c_uint32),
                ("config1", ctypes.c_uint64), ("config2", ctypes.c_uint64)]


@functools.lru_cache(maxsize=None)
def function_and_object_symbols(path):
    """[(name, kind, link address)] of the defined FUNC and OBJECT symbols of an ELF file."""
    symbols = subprocess.run(["readelf", "-W", "-s", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    found = []
    for line in symbols.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] in ("FUNC", "OBJECT") and int(parts[1], 16) != 0:
            found.append((parts[7].split("@")[0], parts[3], int(parts[1], 16)))
    return found


def symbol_value(path, symbol, kind="FUNC"):
    """The link address of `symbol` (.symtab or .dynsym; also as `symbol.N` or
    `symbol.lto_priv.N`, the names a compiler gives a renamed local) in the ELF file `path`,
    or None."""
    for name, found_kind, value in function_and_object_symbols(path):
        if found_kind == kind and name.startswith(symbol) and re.match(r"(\.lto_priv)?(\.[0-9]+)?$", name[len(symbol):]):
            return value
    return None


def address_to_offset(path, address):
    """The file offset of the link address `address` in the ELF file `path`."""
    headers = subprocess.run(["readelf", "-W", "-l", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    for line in headers.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            offset, vaddr, filesz = int(parts[1], 16), int(parts[2], 16), int(parts[4], 16)
            if vaddr <= address < vaddr + filesz:
                return address - vaddr + offset
    sys.exit("address 0x%x of %s is in no load segment" % (address, path))


def file_offset(library, symbol):
    """The file offset of the function `symbol` (.symtab or .dynsym) in `library`."""
    value = symbol_value(library, symbol)
    if value is None:
        sys.exit("no %s in %s" % (symbol, library))
    return address_to_offset(library, value)


def counting_uprobe(pid, library, offset, on_return=False):
    with open("/sys/bus/event_source/devices/uprobe/type") as f:
        pmu = int(f.read())
    path = ctypes.create_string_buffer(library.encode())
    # The PMU's "retprobe" format bit (config:0) makes it a uretprobe.
    attr = PerfEventAttr(type=pmu, size=ctypes.sizeof(PerfEventAttr), config=1 if on_return else 0,
                         config1=ctypes.addressof(path), config2=offset)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(298, ctypes.byref(attr), pid, -1, -1, 8)  # PERF_FLAG_FD_CLOEXEC
    if fd < 0:
        sys.exit("perf_event_open of a uprobe failed: %s" % os.strerror(ctypes.get_errno()))
    return fd
