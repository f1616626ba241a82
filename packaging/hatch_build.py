"""Hatchling hooks for pytap's wheel (run by `bash scripts/wheel`, which stages the files).

The wheel carries no Python code: the static pytap binary is its script, the man page and
the licences are its data. Its platform tags say where that binary runs:

* It is one statically linked x86_64 executable (no PT_INTERP, no shared libraries): it
  never loads the system's C library, so the glibc version a manylinux tag promises and
  the musl a musllinux tag promises are both more than it needs.
* What it does need is a Linux kernel: glibc's static start-up refuses kernels older than
  the one it was built for (3.2, `file` says so) and process_vm_readv came in 3.2.
  manylinux_2_17 (CentOS 7, kernel 3.10) is the oldest manylinux baseline above that;
  manylinux2014 is its old name, for pip 19.3-20.2. musllinux_1_1 lets Alpine's pip
  take the same file.
* pip on macOS, Windows, aarch64 or any other platform finds no matching tag and refuses
  the wheel with "is not a supported wheel on this platform" - not a binary that fails later.
"""
import os
import struct
import subprocess

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

WHEEL_TAG = "py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.musllinux_1_1_x86_64"
PT_INTERP = 3
EM_X86_64 = 62


def stage_dir(root):
    return os.environ.get("PYTAP_WHEEL_STAGE") or os.path.join(root, ".build", "wheel-stage")


def elf_problem(path):
    """Why the file at `path` cannot be the wheel's binary, or None."""
    with open(path, "rb") as f:
        header = f.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return "not a 64-bit little-endian ELF file"
        machine, = struct.unpack_from("<H", header, 18)
        if machine != EM_X86_64:
            return "not an x86_64 executable (e_machine %d)" % machine
        phoff, = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", table, i * phentsize)
        if p_type == PT_INTERP:
            return "dynamically linked (it names an ELF interpreter); build it with scripts/build"
    return None


class PyTapWheel(BuildHookInterface):
    """Puts the staged binary, man page and licences in the wheel under the static-binary tags."""

    def initialize(self, version, build_data):
        stage = stage_dir(self.root)
        binary = os.path.join(stage, "scripts", "pytap")
        if not os.access(binary, os.X_OK):
            raise RuntimeError("no staged pytap binary at %s: build the wheel with `bash scripts/wheel`" % binary)
        problem = elf_problem(binary)
        if problem:
            raise RuntimeError("%s: %s" % (binary, problem))
        printed = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, check=True).stdout.decode().strip()
        if printed != self.metadata.version:
            raise RuntimeError("%s --version prints %r but Sources/PyTap/Version.swift says %r: rebuild the binary"
                               % (binary, printed, self.metadata.version))

        build_data["pure_python"] = False
        build_data["tag"] = WHEEL_TAG
        build_data["shared_scripts"][binary] = "pytap"
        data = os.path.join(stage, "data")
        for directory, _, files in os.walk(data):
            for name in files:
                path = os.path.join(directory, name)
                build_data["shared_data"][path] = os.path.relpath(path, data)


class PyTapUrls(MetadataHookInterface):
    """Project-URL from $PYTAP_PROJECT_URL or the clone's `origin` remote; none rather than a guess."""

    def update(self, metadata):
        url = os.environ.get("PYTAP_PROJECT_URL") or git_origin(self.root)
        metadata["urls"] = {"Homepage": url, "Source": url} if url else {}


def git_origin(root):
    try:
        url = subprocess.run(["git", "-C", root, "remote", "get-url", "origin"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout.decode().strip()
    except OSError:
        return None
    if url.startswith("git@") and ":" in url:  # git@host:owner/repo.git -> https://host/owner/repo
        host, path = url[len("git@"):].split(":", 1)
        url = "https://%s/%s" % (host, path)
    if url.endswith(".git"):
        url = url[:-len(".git")]
    return url if url.startswith("https://") else None


if __name__ == "__main__":  # scripts/wheel checks the binary before it spends time on it
    import sys
    problem = elf_problem(sys.argv[1])
    if problem:
        sys.exit("wheel: %s: %s" % (sys.argv[1], problem))
