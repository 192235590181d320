"""Crash recovery: start a lab (which starts its own demo), SIGKILL the runner, `obslab lab reset`: nothing left.
Then reset again: idempotent, nothing to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from obslab.labs import api, runner, sandbox
from obslab.labs.demo import load_demo
from obslab.labs.selftest import instance_residue

from obslab import procs
from obslab.procs import OBSLAB
from tests.conftest import requires_root

pytestmark = [requires_root, pytest.mark.root, pytest.mark.slow]


def obslab(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OBSLAB, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )


@pytest.mark.parametrize("lab_id", ["disk-full", "memory-leak-oom"])
def test_sigkill_runner_then_reset_leaves_nothing(lab_state: Path, lab_id: str) -> None:
    res = obslab("lab", "start", lab_id, "--detach", "--duration", "120")
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 120
    while api.current()["state"] != "running":
        assert time.monotonic() < deadline, api.current()
        time.sleep(0.3)
    demo = load_demo()
    assert demo is not None
    rproc = procs.Proc.load(runner.runner_record())
    assert rproc is not None and rproc.alive()
    culprit_cg = next(
        sandbox.cgroup(f, mode=demo.cgroup_mode)
        for f in (
            f"{demo.app_cgroup}/dump",
            f"{demo.app_cgroup.rsplit('/', 1)[0]}/dump",
            f"{demo.app_cgroup}/leaky-worker",
        )
        if sandbox.cgroup(f, mode=demo.cgroup_mode).exists()
    )
    deadline = time.monotonic() + 30
    while not culprit_cg.pids():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    culprits = [procs.Proc("c", p, procs.proc_starttime(p) or -1, [], "") for p in culprit_cg.pids()]

    os.kill(rproc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while rproc.alive():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert api.current()["state"] == "finished" and api.current()["end_reason"] == "runner-died"
    assert demo.alive()  # the runner died; its demo and its faults are still in place until the reset
    assert list((lab_state / "ledger").glob("lab-*.jsonl"))

    res = obslab("lab", "reset", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert "runner" in report["replayed"] and report["errors"] == []

    assert not demo.alive()
    assert not any(c.alive() for c in culprits)
    assert instance_residue(demo.iid) == []
    assert not list((lab_state / "ledger").glob("*.jsonl"))
    assert not runner.files_dir().exists()
    assert api.current()["state"] == "finished"

    again = obslab("lab", "reset", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout) == {"replayed": [], "swept": [], "errors": []}
