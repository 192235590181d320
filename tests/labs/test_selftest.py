"""`obslab lab selftest --all --json` for real: every lab's evidence holds in a real Prometheus scraping the
host exporter and the demo, right answers accepted, wrong ones refused, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from obslab.labs.catalog import load_catalog

from obslab.procs import OBSLAB
from tests.conftest import requires_root

pytestmark = [requires_root, pytest.mark.root, pytest.mark.slow]


def test_selftest_all(lab_state: Path) -> None:
    argv = [*OBSLAB, "lab", "selftest", "--all", "--json"]
    res = subprocess.run(
        [*argv, "--duration", "150"], capture_output=True, text=True, timeout=900, env=os.environ.copy()
    )
    results = json.loads(res.stdout)
    assert {r["id"] for r in results} == set(load_catalog())
    failed = {
        r["id"]: [c for c in r["checks"] if not c["ok"]] + r["residue"] for r in results if not r["passed"]
    }
    assert not failed, failed
    assert res.returncode == 0, res.stderr[-2000:]
    for r in results:
        names = [c["name"] for c in r["checks"]]
        assert sum(n.startswith("evidence: ") for n in names) >= 2
        assert sum(n.startswith("wrong answer refused") for n in names) >= 2
        assert "right answer accepted" in names and r["residue"] == []
