#!/usr/bin/env bash
# Install obslab's systemd units from this checkout.
#   deploy/systemd/install.sh                 render into /etc/systemd/system, daemon-reload, enable
#   deploy/systemd/install.sh --dest DIR --no-enable   only render (what the tests do)
# @PREFIX@ in the units becomes the checkout's absolute path. The exporters run as DynamicUser accounts, so
# the checkout (and its .venv) must be readable by any user: /opt/obslab is, /root/obslab is not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(cd "$here/../.." && pwd)
dest=/etc/systemd/system
enable=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --dest) dest=$2; shift 2 ;;
    --no-enable) enable=0; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
if [ ! -x "$prefix/.venv/bin/obslab" ]; then
  echo "install.sh: $prefix/.venv/bin/obslab is missing: run 'make setup' in $prefix first" >&2; exit 3
fi
# Every directory on the way to the checkout must be searchable by others for the DynamicUser services.
d=$prefix
while [ "$d" != / ]; do
  if [ "$(stat -c %A "$d" | cut -c10)" != x ]; then
    echo "install.sh: warning: $d is not searchable by other users; the exporters (DynamicUser) will" \
         "not start. Clone obslab under /opt instead." >&2
    break
  fi
  d=$(dirname "$d")
done
mkdir -p "$dest"
for unit in "$here"/*.service "$here"/*.target; do
  sed "s#@PREFIX@#$prefix#g" "$unit" > "$dest/$(basename "$unit")"
  echo "installed $dest/$(basename "$unit")"
done
if [ $enable = 1 ]; then
  systemctl daemon-reload
  systemctl enable obslab-lab-reset.service obslab.target
  echo "enabled: obslab-lab-reset.service (at boot) and obslab.target; start now: systemctl start obslab.target"
fi
