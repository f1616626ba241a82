#!/usr/bin/env bash
# Installs, idempotently, the interpreters pytap's tests run against:
#  - Debian's python3.11-dbg (debug files for the stripped /usr/bin/python3.11)
#  - a Debian sid chroot with python3.13, python3.14, python3.15 and their -dbg packages
#  - py-spy from PyPI in a venv, for comparisons in tests and benchmarks
# The pyenv interpreters at /root/.pyenv/versions/*/bin/pythonX.Y are used as they are.
# Safe to run again: each step checks what is already there.
set -euo pipefail

CHROOT=${PYTAP_SID_CHROOT:-/var/lib/pytap/sid}
VENV=${PYTAP_TOOLS_VENV:-/var/lib/pytap/venv}
SID_PYTHONS=(python3.13 python3.14 python3.15)

log() { printf 'setup-matrix: %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then log "must run as root (apt-get, debootstrap, chroot)"; exit 1; fi
}

# The Debian mirror this machine's apt already uses; never a hard-coded host.
debian_mirror() {
  local uri
  uri=$(grep -rhoE '^(URIs:|deb) +[a-z]+://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | awk '{print $2}' | grep -v security | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -rhoE '[a-z]+://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -n1 || true)
  fi
  [ -n "$uri" ] || { log "no Debian mirror found in /etc/apt/sources*"; exit 1; }
  printf '%s\n' "${uri%/}"
}

apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

host_packages() {
  # man-db (with groff-base): tests/test_wheel.py renders the wheel's man page with `man -l`.
  # gdb: tests/test_core.py makes core files with gcore.
  # chromium: tests/test_more_views.py renders the heat map headless and checks its pixels.
  # llvm: llvm-cxxfilt cross-checks the Rust v0 demangler (Tests/PyTapTests/RustV0DemanglerTests.swift).
  apt_install debootstrap python3.11-dbg libbpf-dev libelf-dev libdeflate-dev tmux man-db groff-base gdb chromium llvm
}

sid_chroot() {
  local ok=1
  for p in "${SID_PYTHONS[@]}"; do [ -x "$CHROOT/usr/bin/$p" ] || ok=0; done
  [ -x "$CHROOT/usr/bin/gcore" ] || ok=0
  if [ $ok = 1 ] && [ -f "$CHROOT/.pytap-complete" ]; then log "sid chroot ready at $CHROOT"; return 0; fi
  local mirror; mirror=$(debian_mirror)
  if [ ! -x "$CHROOT/usr/bin/apt-get" ]; then
    log "debootstrap sid into $CHROOT from $mirror (a few minutes)"
    # A half-made chroot may have /proc mounted: unmount it, and never cross into mounts.
    if mountpoint -q "$CHROOT/proc" 2>/dev/null; then umount "$CHROOT/proc"; fi
    rm -rf --one-file-system "$CHROOT"; mkdir -p "$CHROOT"
    debootstrap --variant=minbase sid "$CHROOT" "$mirror" >/tmp/pytap-debootstrap.log 2>&1 || {
      log "debootstrap failed; see /tmp/pytap-debootstrap.log"; tail -n 20 /tmp/pytap-debootstrap.log >&2; exit 1; }
  fi
  local pkgs=()
  for p in "${SID_PYTHONS[@]}"; do pkgs+=("$p" "$p-dbg"); done
  # gdb: tests/test_core.py gcores chrooted targets with the chroot's own gdb (the host's
  # gdb 13 cannot read glibc 2.42+ thread-stack guard pages).
  pkgs+=(gdb)
  log "installing ${pkgs[*]} in the chroot"
  # The mirror may serve a frozen snapshot of sid whose Release file has expired.
  echo 'Acquire::Check-Valid-Until "false";' > "$CHROOT/etc/apt/apt.conf.d/99pytap-no-valid-until"
  chroot "$CHROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  chroot "$CHROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  chroot "$CHROOT" apt-get clean
  touch "$CHROOT/.pytap-complete"
}

# Targets in the chroot read /proc/self like any container does.
chroot_proc() {
  mountpoint -q "$CHROOT/proc" || mount -t proc proc "$CHROOT/proc"
}

tools_venv() {
  # pillow: tests/test_more_views.py decodes the heat map's screenshot.
  if [ -x "$VENV/bin/py-spy" ] && [ -x "$VENV/bin/pytest" ] && "$VENV/bin/python" -c "import PIL" 2>/dev/null; then
    log "py-spy, pytest and pillow ready in $VENV"; return 0
  fi
  log "creating $VENV with py-spy, pytest and pillow from PyPI"
  [ -x "$VENV/bin/python" ] || /usr/bin/python3.11 -m venv "$VENV" 2>/dev/null || { apt_install python3.11-venv; /usr/bin/python3.11 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q py-spy pytest pillow
}

need_root
host_packages
sid_chroot
chroot_proc
tools_venv
log "done"
