"""Errors name what pytap could not read: a libpython that is mapped but cannot be
parsed is named in the "not a Python process" error (it used to be skipped silently)."""
import os
import re
import subprocess
import tempfile
import time

from conftest import run_pytap

# A Swift enum dump: a case with labelled associated values, or a library type name.
ENUM_DUMP = re.compile(r"[A-Za-z]\([A-Za-z]+:|MemoryReadError|ObjectFileError|AttachError|LayoutError")


def test_unparsable_libpython_is_named():
    directory = tempfile.mkdtemp(prefix="pytap-tests-")
    fake = os.path.join(directory, "libpython3.12.so.1.0")
    with open(fake, "wb") as f:
        f.write(b"not an ELF file" + b"\0" * 8192)
    # perl maps the file (mmap is syscall 9 on x86_64) and waits: a process that maps a
    # "libpython" but runs no Python.
    script = 'open(my $f, "<", $ARGV[0]) or die; syscall(9, 0, 4096, 1, 2, fileno($f), 0) > 0 or die "mmap"; ' \
             'print "mapped\\n"; $| = 1; sleep 60'
    process = subprocess.Popen(["perl", "-e", script, fake], stdout=subprocess.PIPE)
    try:
        assert process.stdout.readline() == b"mapped\n"
        with open("/proc/%d/maps" % process.pid) as maps:
            assert fake in maps.read()
        result = run_pytap("dump", "--pid", process.pid)
    finally:
        process.kill()
        process.wait()
    assert result.returncode == 4, result.stderr.decode()
    line = result.stderr.decode().strip()
    assert line.startswith("pytap: error: process %d (perl) is not a Python process" % process.pid), line
    assert "could not read %s (" % fake in line, line
    assert "is not an ELF file" in line, line
    assert not ENUM_DUMP.search(line), line
