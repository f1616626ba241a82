"""The pip-installable wheel (scripts/wheel): built from the tested binary, installed into a
fresh venv, and used there through its installed `pytap` against a live interpreter."""
import json
import os
import re
import subprocess
import sys
import time
import zipfile

import pytest

import interpreters
from conftest import ROOT, pytap_path

VERSION_SWIFT = os.path.join(ROOT, "Sources", "PyTap", "Version.swift")
# The interpreter the installed pytap reads: the first present of these.
DUMP_TARGETS = ("pyenv-3.12", "debian-3.11-static", "pyenv-3.13", "pyenv-2.7")


def source_version():
    with open(VERSION_SWIFT) as f:
        return re.search(r'string = "([^"]+)"', f.read()).group(1)


def run(argv, **kwargs):
    kwargs.setdefault("timeout", 600)
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Builds the wheel from the binary the other tests run (no second Swift build)."""
    out = tmp_path_factory.mktemp("dist")
    env = dict(os.environ, PYTAP_WHEEL_OUT=str(out))
    result = run(["bash", os.path.join(ROOT, "scripts", "wheel"), pytap_path()], env=env, timeout=1800)
    assert result.returncode == 0, result.stderr
    wheels = sorted(os.listdir(str(out)))
    assert len(wheels) == 1, wheels
    return os.path.join(str(out), wheels[0])


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh venv with nothing but the wheel installed (offline: the wheel has no dependencies)."""
    path = str(tmp_path_factory.mktemp("venv"))
    assert run([sys.executable, "-m", "venv", path]).returncode == 0
    result = run([os.path.join(path, "bin", "pip"), "install", "--no-index", "--disable-pip-version-check", wheel])
    assert result.returncode == 0, result.stderr
    return path


def test_wheel_name_tags_and_metadata(wheel):
    version = source_version()
    assert os.path.basename(wheel) == (
        "pytap-%s-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.musllinux_1_1_x86_64.whl" % version)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = "pytap-%s.dist-info/" % version
        wheel_file = archive.read(info + "WHEEL").decode()
        metadata = archive.read(info + "METADATA").decode()
        script = archive.getinfo("pytap-%s.data/scripts/pytap" % version)
    assert "Root-Is-Purelib: false" in wheel_file
    assert "Tag: py3-none-manylinux_2_17_x86_64" in wheel_file
    assert "Tag: py3-none-musllinux_1_1_x86_64" in wheel_file
    assert "pytap-%s.data/data/share/man/man1/pytap.1" % version in names
    for linked in ["swift-argument-parser", "swift-runtime", "glibc", "zlib", "libdeflate", "libbpf", "libelf"]:
        assert "pytap-%s.data/data/share/doc/pytap/licenses/%s.txt" % (version, linked) in names, linked
    assert info + "licenses/LICENSE" in names
    assert script.external_attr >> 16 & 0o111, "the binary is not executable in the wheel"
    assert "Version: %s\n" % version in metadata
    assert "License-Expression: Apache-2.0" in metadata
    assert "Classifier: Operating System :: POSIX :: Linux" in metadata
    assert "Description-Content-Type: text/markdown" in metadata
    assert "## Quick start" in metadata  # the README is the long description


# pip's --platform takes the named tags only (a real glibc 2.39 or musl 1.2 machine also
# accepts every older one; this machine's own pip installs the wheel in the `venv` fixture).
@pytest.mark.parametrize("platform,accepted", [
    ("manylinux_2_17_x86_64", True),
    ("manylinux2014_x86_64", True),
    ("musllinux_1_1_x86_64", True),
    ("manylinux_2_17_aarch64", False),
    ("linux_x86_64", False),
    ("macosx_11_0_x86_64", False),
    ("win_amd64", False),
])
def test_pip_takes_the_wheel_only_on_x86_64_linux(wheel, tmp_path, platform, accepted):
    result = run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "--dry-run",
                  "--only-binary=:all:", "--platform", platform, "--target", str(tmp_path), wheel])
    if accepted:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0
        assert "is not a supported wheel on this platform" in result.stderr


def test_installed_pytap_prints_the_source_version(venv):
    result = run([os.path.join(venv, "bin", "pytap"), "--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == source_version()


def test_installed_pytap_dumps_a_live_interpreter(venv, workload):
    present = [interpreters.BY_NAME[name] for name in DUMP_TARGETS if interpreters.BY_NAME[name].missing_reason() is None]
    if not present:
        pytest.skip("SKIPPED none of %s is installed (run scripts/setup-matrix.sh)" % (DUMP_TARGETS,))
    w = workload(present[0], "dump_target.py")
    truth = w.truth()
    want = dict((t["ident"], t) for t in truth["threads"])
    deadline = time.time() + 10
    while True:  # until the truth reporter thread has exited (it is not part of the truth)
        result = run([os.path.join(venv, "bin", "pytap"), "dump", "--pid", str(w.pid), "--json"], timeout=60)
        assert result.returncode == 0, result.stderr
        got = dict((t["ident"], t) for t in json.loads(result.stdout)["threads"])
        if truth["reporter_ident"] not in got or time.time() > deadline:
            break
        time.sleep(0.05)
    assert sorted(got) == sorted(want)
    for ident, expected in want.items():
        frames = [dict((k, f[k]) for k in ("name", "qualname", "file", "line")) for f in got[ident]["frames"]]
        assert frames == expected["frames"], expected["role"]


def test_installed_man_page_renders(venv):
    page = os.path.join(venv, "share", "man", "man1", "pytap.1")
    env = dict(os.environ, MANWIDTH="100", MANPAGER="cat", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    result = run(["man", "--warnings", "-l", page], env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no groff warnings either
    text = result.stdout
    assert re.search(r"^NAME\n\s+pytap\b", text, re.M), text[:500]
    # Non-ASCII help text survives (generate-manual alone drops it: "3.63.15").
    for expected in ("dump", "sample", "top", "--pid", "--rate", "--version", "Exit codes", "3.6\u20133.15"):
        assert expected in text, expected


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_installed_pytap_generates_completion_scripts(venv, shell):
    result = run([os.path.join(venv, "bin", "pytap"), "--generate-completion-script", shell])
    assert result.returncode == 0, result.stderr
    for subcommand in ("dump", "sample", "top"):
        assert subcommand in result.stdout
    if shell == "bash":  # the script must load: it registers a completion function for pytap
        loaded = run(["bash", "-c", 'source /dev/stdin; complete -p pytap'], input=result.stdout)
        assert loaded.returncode == 0, loaded.stderr
        assert "pytap" in loaded.stdout


def test_wheel_refuses_a_dynamically_linked_binary(tmp_path):
    """The tags promise a binary that needs no system library: a dynamic one must not be packed."""
    env = dict(os.environ, PYTAP_WHEEL_OUT=str(tmp_path))
    result = run(["bash", os.path.join(ROOT, "scripts", "wheel"), "/bin/ls"], env=env)
    assert result.returncode != 0
    assert "dynamically linked" in result.stderr
    assert os.listdir(str(tmp_path)) == []
