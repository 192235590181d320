"""docs/metrics.md lists every family the host exporter exports (live machine and fixture tree)."""

from __future__ import annotations

import re

from obslab.paths import REPO_ROOT

from .hosttools import fixture_args, run_exporter


def _families(exposition: str) -> set[str]:
    out = set()
    for line in exposition.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            out.add(m.group(1))  # prometheus_client prints a counter's TYPE line with its _total name
    return out


def test_every_host_family_is_documented() -> None:
    documented = set(
        re.findall(r"\| `(obslab_[a-z0-9_]+)` \|", (REPO_ROOT / "docs" / "metrics.md").read_text())
    )
    exported = _families(run_exporter("--once").stdout) | _families(
        run_exporter("--once", *fixture_args()).stdout
    )
    assert len(exported) > 100
    missing = sorted(exported - documented)
    assert not missing, f"families exported but not in docs/metrics.md: {missing}"
