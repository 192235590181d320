#!/usr/bin/env bash
# Turn a fresh Ubuntu 24.04 / Debian 12 VM into a ready obslab lab VM, from a checkout of obslab.
# Run as root from anywhere; the checkout is this script's ../.. (cloud-init clones it to /opt/obslab,
# Vagrant syncs it there). Idempotent: running it again only (re)does what is missing.
#   1. make setup         system packages, kernel headers, tracefs, .venv   (scripts/setup.sh)
#   2. systemd units      obslab-lab-reset at boot (a VM that crashed mid-lab comes back clean) and
#                         obslab-stack (`obslab up` at boot, `obslab down` at shutdown)
#   3. start the stack    the same as `make up`
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
say() { printf 'obslab-bootstrap: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { say "run as root"; exit 3; }
cd "$root"
say "setup in $root"
make setup
bash deploy/systemd/install.sh --no-enable
systemctl daemon-reload
systemctl enable obslab-lab-reset.service obslab-stack.service
systemctl start obslab-lab-reset.service
systemctl start obslab-stack.service
"$root/.venv/bin/obslab" status || true
cat <<MSG >&2
obslab-bootstrap: ready. From your machine, tunnel the console and open the URL printed by
  sudo $root/.venv/bin/obslab status
for example:  ssh -L 19300:127.0.0.1:19300 -L 19400:127.0.0.1:19400 <this VM>
MSG
