"""Shared pieces for the host exporter tests: the fixture tree and running the real exporter CLI."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from obslab.paths import REPO_ROOT
from obslab.procs import OBSLAB

FIXTURES = REPO_ROOT / "tests" / "fixtures"
GOLDEN = FIXTURES / "golden"
#: Set to 1 to rewrite the golden files from the current output (then review the diff in git).
UPDATE_GOLDEN = os.environ.get("OBSLAB_UPDATE_GOLDEN") == "1"


def run_exporter(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real command line, as a user would: ``python -m obslab.cli exporter host ...``."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        [*OBSLAB, "exporter", "host", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def fixture_args(sysfs: str = "sys") -> list[str]:
    return [
        "--path.procfs",
        str(FIXTURES / "proc"),
        "--path.sysfs",
        str(FIXTURES / sysfs),
        "--path.rootfs",
        str(FIXTURES / "rootfs"),
    ]


#: Values that cannot be fixed by a fixture: wall-clock durations, and statvfs results (the fixture's
#: mount points are directories on whatever disk holds the checkout). Their labels and presence are
#: still compared; only the value is masked.
_VOLATILE = re.compile(
    r"^((?:obslab_scrape_collector_duration_seconds|obslab_filesystem_(?:size|free|avail)_bytes|"
    r"obslab_filesystem_files(?:_free)?)\{[^}]*\}) .*$",
    re.M,
)


def normalise(exposition: str) -> str:
    text = _VOLATILE.sub(r"\1 <volatile>", exposition)
    return re.sub(r'python="[^"]*"', 'python="<python>"', text)


def compare_golden(name: str, exposition: str) -> None:
    path = GOLDEN / name
    got = normalise(exposition)
    if UPDATE_GOLDEN or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
        if not UPDATE_GOLDEN:
            raise AssertionError(f"{path} did not exist; written now: review and commit it")
        return
    want = path.read_text()
    if got != want:
        import difflib

        diff = "".join(
            difflib.unified_diff(
                want.splitlines(True), got.splitlines(True), str(path), "exporter output", n=1
            )
        )
        raise AssertionError(
            f"exposition differs from {path} (OBSLAB_UPDATE_GOLDEN=1 rewrites it):\n{diff[:6000]}"
        )


def samples(exposition: str) -> dict[str, float]:
    """``'name{labels}' -> value`` for every sample line."""
    out = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def collector_states(exposition: str) -> dict[str, tuple[float, float]]:
    """collector → (success, no_data)."""
    s = samples(exposition)
    out = {}
    for key, value in s.items():
        m = re.fullmatch(r'obslab_scrape_collector_success\{collector="([^"]+)"\}', key)
        if m:
            out[m.group(1)] = (
                value,
                s.get(f'obslab_scrape_collector_no_data{{collector="{m.group(1)}"}}', -1.0),
            )
    return out


__all__ = [
    "FIXTURES",
    "Path",
    "collector_states",
    "compare_golden",
    "fixture_args",
    "run_exporter",
    "samples",
]
