"""Samples pytap loses (torn or errors) on real code: none when the target exits, and
under 0.5% on CPython's own test suite at 1000 Hz."""
import os
import re

import pytest

from conftest import run_pytap
from test_sample import stage_default

SUMMARY = re.compile(r"pytap: ([\d,]+) samples of .*; torn (\d+),.* errors (\d+)")
SUITE = ["test_re", "test_json", "test_statistics", "test_difflib", "test_textwrap", "test_csv"]


def losses(stderr):
    match = SUMMARY.search(stderr)
    assert match, stderr
    samples, torn, errors = int(match.group(1).replace(",", "")), int(match.group(2)), int(match.group(3))
    return samples, torn, errors


def test_target_exit_is_not_counted_as_errors():
    # While a process exits its memory is gone before it becomes a zombie: reads fail
    # then, and that is the end of the recording, not lost samples.
    interp = stage_default()
    # A large address space takes long to tear down: reads fail all that time.
    busy = "import time\nheap = [bytes(1000) for _ in range(300000)]\nend = time.time() + 0.5\nwhile time.time() < end: pass\n"
    for _ in range(3):
        result = run_pytap("sample", "-r", 1000, "-f", "folded", "--", interp.path, "-c", busy, timeout=60)
        stderr = result.stderr.decode()
        assert result.returncode == 0, stderr
        samples, torn, errors = losses(stderr)
        # Exit failures came as a run of thread reads failing (8 in a row here before);
        # a rare torn walk elsewhere (a frame caught mid-reuse) is not this test's matter.
        assert samples > 100 and errors < 3, stderr
        assert "thread list unreadable" not in stderr and "thread state unreadable" not in stderr, stderr


# Issue 6 item 7. On a quiet machine (the suite runs in 5-6 s) pytap lost 2.84% before the
# cframe/data-stack fixes and 0.17-0.43% after them with 7 retries (5 runs); under heavy
# load (the suite runs for minutes) less.
def test_cpython_test_suite_loses_under_half_a_percent():
    interp = stage_default()
    test_package = os.path.join(os.path.dirname(os.path.dirname(interp.path)), "lib", "python3.12", "test")
    if not os.path.isdir(test_package):
        pytest.skip("SKIPPED %s has no test package (%s)" % (interp, test_package))
    # Three runs of the suite, counted together: one run gives 2,500-5,000 samples, where
    # a handful of torn walks more or less moves the rate by 0.1%.
    samples = torn = errors = 0
    for _ in range(3):
        result = run_pytap("sample", "-r", 1000, "-f", "folded", "-o", os.devnull, "--",
                           interp.path, "-m", "test", *SUITE, timeout=600)
        stderr = result.stderr.decode()
        assert result.returncode == 0, stderr[-3000:]
        counts = losses(stderr)
        samples, torn, errors = samples + counts[0], torn + counts[1], errors + counts[2]
    print("samples %d, torn %d, errors %d: %.2f%% lost" % (samples, torn, errors, 100.0 * (torn + errors) / (samples + torn + errors)))
    assert samples > 500, stderr[-3000:]
    assert torn + errors < 0.005 * (samples + torn + errors), stderr[-3000:]
