#!/usr/bin/env bash
# Idempotent setup for a Debian 12 / Ubuntu 24.04 machine: system packages, kernel headers for bcc,
# tracefs, and the project's virtualenv (.venv) that can import Debian's bcc.
# Every step checks first and does nothing when it is already done, so `make up` / `make test` may call it
# every time. Run as root for the system part; without root only the venv is (re)built.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

# Debian package names this project needs. Keep one list: doctor and docs point here.
APT_PACKAGES=(
  python3 python3-venv python3-dev build-essential
  python3-bpfcc bpfcc-tools libbpfcc
  prometheus prometheus-alertmanager prometheus-node-exporter victoria-metrics docker-compose
  chromium chromium-driver
  stress-ng fio sysstat procps iproute2 nftables iputils-ping curl kmod
  nodejs npm
)

missing_packages() {
  local p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || printf '%s\n' "$p"
  done
}

apt_install() {
  # Debian's postinst scripts would start prometheus & co. as system services on their default ports;
  # obslab supervises its own copies, so keep the packaged daemons stopped during install (policy-rc.d 101).
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" || { [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; return 1; }
  [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

apt_updated=0
apt_update_once() {
  if [ $apt_updated = 0 ]; then say "apt-get update"; apt-get update -q >/dev/null; apt_updated=1; fi
}

system_packages() {
  mapfile -t need < <(missing_packages)
  # Node.js may come from another repository (nodesource) as a single `nodejs` package that bundles npm.
  if command -v npm >/dev/null 2>&1; then need=("${need[@]/npm}"); need=("${need[@]/nodejs}"); fi
  local filtered=(); for p in "${need[@]}"; do [ -n "$p" ] && filtered+=("$p"); done
  if [ ${#filtered[@]} -eq 0 ]; then say "system packages: all present"; return; fi
  apt_update_once
  say "installing: ${filtered[*]}"
  apt_install "${filtered[@]}"
}

# Kernel headers: bcc compiles its programs against /lib/modules/$(uname -r)/build.
# Exact match when the distribution has it; otherwise the nearest version, linked in, and said plainly.
# obslab's probes read only tracepoint arguments (args->field), which do not depend on struct layouts,
# so the nearest headers are safe for them (any kernel-struct read would be silently wrong).
kernel_headers() {
  local rel; rel=$(uname -r)
  local mod=/lib/modules/$rel
  if [ -e "$mod/build/Makefile" ] && { [ -e "$mod/build/include/linux/kconfig.h" ] || [ -e "$mod/source/include/linux/kconfig.h" ]; }; then
    say "kernel headers: present for $rel ($(readlink -f "$mod/build"))"; return
  fi
  apt_update_once
  if apt-cache show "linux-headers-$rel" >/dev/null 2>&1; then
    say "kernel headers: installing exact linux-headers-$rel"
    apt_install "linux-headers-$rel"; return
  fi
  # Nearest: same flavour suffix (e.g. -amd64, -cloud-amd64) when possible, closest version number.
  local arch; arch=$(dpkg --print-architecture)
  local cand; cand=$(apt-cache pkgnames linux-headers- 2>/dev/null | grep -E -- "-${arch}\$" | grep -v -- '-rt-' | sort -u || true)
  if [ -z "$cand" ]; then say "kernel headers: none available for $rel; eBPF probes will be unavailable (obslab doctor says so)"; return; fi
  local best
  best=$(python3 - "$rel" $cand <<'PY'
import re, sys
def key(v):
    return [int(x) for x in re.findall(r"\d+", v)[:3]] + [0] * 3
want = key(sys.argv[1])[:3]
def dist(name):
    k = key(name.removeprefix("linux-headers-"))[:3]
    return (abs(k[0] - want[0]) * 10**6 + abs(k[1] - want[1]) * 10**3, -k[2], "cloud" in name)
print(min(sys.argv[2:], key=dist))
PY
)
  local ver=${best#linux-headers-}
  say "kernel headers: no linux-headers-$rel in the archive; installing the nearest, $best,"
  say "  and linking it as $mod/build and $mod/source. Its struct layouts differ from the running kernel:"
  say "  obslab's probes read tracepoint arguments only, which stay correct; other bcc tools reading structs may not."
  dpkg-query -W -f='${Status}' "$best" 2>/dev/null | grep -q 'ok installed' || apt_install "$best"
  # Debian splits headers into an arch tree (build) and a -common tree (source); mirror its own links.
  local ref=/lib/modules/$ver
  local b; b=$(readlink -f "$ref/build" 2>/dev/null || echo "/usr/src/linux-headers-$ver")
  local s; s=$(readlink -f "$ref/source" 2>/dev/null || echo "$b")
  mkdir -p "$mod"
  ln -sfn "$b" "$mod/build"
  ln -sfn "$s" "$mod/source"
  say "  $mod/build -> $b, $mod/source -> $s"
}

tracefs() {
  # bcc attaches tracepoints through tracefs; some VMs boot without it mounted.
  if [ ! -e /sys/kernel/tracing/events ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null && say "mounted tracefs on /sys/kernel/tracing" || say "could not mount tracefs"
  fi
  if [ ! -e /sys/kernel/debug/tracing ] && [ -d /sys/kernel/debug ] && ! mountpoint -q /sys/kernel/debug; then
    mount -t debugfs nodev /sys/kernel/debug 2>/dev/null && say "mounted debugfs on /sys/kernel/debug" || true
  fi
}

venv() {
  local py=/usr/bin/python3
  [ -x "$py" ] || py=$(command -v python3)
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $py"
    "$py" -m venv .venv
  fi
  # Debian ships bcc for its own python3 only (python3-bpfcc). Expose just that package to the venv
  # by a symlink, rather than --system-site-packages, so the rest of the venv stays isolated.
  local site; site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  for d in /usr/lib/python3/dist-packages/bcc; do
    [ -d "$d" ] && ln -sfn "$d" "$site/bcc"
  done
  local stamp=.venv/.obslab-installed
  local want; want=$(cat pyproject.toml | sha256sum | cut -c1-16)
  if [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
    say "installing obslab and its Python dependencies into .venv"
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e '.[dev]'
    echo "$want" > $stamp
  else
    say ".venv: up to date"
  fi
}

web_assets() {
  # The console's charting library comes from the npm registry at setup time (never committed, no CDN).
  [ -f scripts/web-assets.sh ] && bash scripts/web-assets.sh || true
}

if [ "$(id -u)" = 0 ]; then
  system_packages
  kernel_headers
  tracefs
else
  say "not root: skipping system packages, headers and tracefs (run 'sudo make setup' once)"
fi
venv
web_assets
say "done"
