"""Code objects freed and reallocated at the same address (a function made with exec and
dropped every few ms) must be named by what is there now, not by a cached old name."""
import os
import re
import time

import pytest

from conftest import interpreter_params, run_pytap
from test_sample import parse_folded, wait_for_file

CHURN = re.compile(r"^(churn_\d+) \(")


def sampled_names(rows):
    counts = {}
    for frames, count in rows:
        for label in frames:
            match = CHURN.match(label)
            if match:
                counts[match.group(1)] = counts.get(match.group(1), 0) + count
    return counts


@pytest.mark.parametrize("interp", interpreter_params(debug=True))
def test_reused_code_addresses_are_named_by_the_new_code(interp):
    check_churn_names(interp, [])


# The native sampler reads Python frames from the kernel's copies and checks the code
# objects it named them by once per batch of samples, not once per sample.
@pytest.mark.parametrize("interp", interpreter_params(["pyenv-3.11", "pyenv-3.12", "sid-3.14"]))
def test_reused_code_addresses_are_named_by_the_new_code_when_sampling_natively(interp):
    check_churn_names(interp, ["--native"])


def check_churn_names(interp, options):
    own_dir, host_dir = interp.stage()
    process = interp.popen(os.path.join(own_dir, "code_churn.py"), os.path.join(own_dir, "churn.json"), 6, 0.02)
    try:
        time.sleep(1.0)
        result = run_pytap("sample", "--pid", process.pid, "--duration", 4, "--rate", 1000, "-f", "folded", *options,
                           timeout=60)
        assert result.returncode == 0, result.stderr.decode()
        made = wait_for_file(os.path.join(host_dir, "churn.json"), process)["functions"]
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    counts = sampled_names(parse_folded(result.stdout.decode("utf-8")))
    known = set(m[0] for m in made)
    assert set(counts) <= known, "names never made: %s" % sorted(set(counts) - known)[:5]
    # Functions that ran while pytap surely sampled: each gets samples in proportion to how
    # long it ran. The window is taken from the samples themselves (first to last function
    # sampled, 0.2 s in from each end), not from when pytap was started: a cold page cache
    # on a fresh machine once delayed its first sample by 2 s. A stale cached name still
    # shows, as many functions inside the window with no samples.
    sampled = [m for m in made if m[0] in counts]
    assert sampled, "no churn function sampled at all"
    first, last = sampled[0][1] + 0.2, sampled[-1][2] - 0.2
    window = [m for m in made if first <= m[1] and m[2] <= last]
    total = sum(counts.get(m[0], 0) for m in window)
    wall = sum(m[2] - m[1] for m in window)
    assert len(window) > 20 and total > 0, (len(window), total)
    # A stale cached name gives one function the samples of the many made after it at its
    # address (hundreds), and none to those (nearly all). Rounds pytap misses or catches up
    # on a busy machine only leave a few functions unsampled or a few samples too many.
    missing = [m[0] for m in window if m[0] not in counts]
    inflated = []
    for name, began, ended in window:
        expected = total * (ended - began) / wall
        if counts.get(name, 0) > 3 * expected + 15:
            inflated.append((name, counts[name], round(expected, 1)))
    print("%s: %d functions, %d samples, %d never sampled, %d over-sampled %s" % (
        interp, len(window), total, len(missing), len(inflated), inflated[:5]))
    assert len(missing) <= 0.25 * len(window), missing[:10]
    assert not inflated
