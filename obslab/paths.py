"""Where things live: the checkout's deploy/ tree, the state directory, external binaries."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: The checkout root (obslab runs from its repository: deploy/ and docs/ are read from there).
REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = REPO_ROOT / "deploy"


def state_dir() -> Path:
    """Logs, PID files, TSDB, lab ledger. ``OBSLAB_STATE_DIR`` overrides the default.

    Root: /var/lib/obslab (survives a crash and a reboot, so `obslab lab reset` finds the ledger).
    Others: $XDG_STATE_HOME/obslab or ~/.local/state/obslab.
    """
    env = os.environ.get("OBSLAB_STATE_DIR")
    if env:
        path = Path(env)
    elif os.geteuid() == 0:
        path = Path("/var/lib/obslab")
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / "obslab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_binary(name: str, extra: tuple[str, ...] = ()) -> str | None:
    """A binary on PATH or in the places Debian puts daemons (/usr/sbin, /usr/bin)."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin", *extra):
        candidate = Path(d) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None
