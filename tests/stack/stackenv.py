"""Helpers for tests that run a whole stack on free ports in its own state directory."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from obslab.config import DEFAULT_PORTS
from obslab.paths import REPO_ROOT
from obslab.procs import free_port

OBSLAB = str(REPO_ROOT / ".venv" / "bin" / "obslab")


def stack_env(state: Path) -> dict[str, str]:
    """Environment for an `obslab` subprocess: every port free and unique, a private state directory."""
    env = dict(os.environ)
    env.pop("OBSLAB_TOKEN", None)
    ports: set[int] = set()
    for name in DEFAULT_PORTS:
        port = free_port()
        while port in ports:
            port = free_port()
        ports.add(port)
        env[f"OBSLAB_{name.upper()}_PORT"] = str(port)
    env["OBSLAB_STATE_DIR"] = str(state)
    env["COLUMNS"] = "200"
    return env


def run_obslab(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OBSLAB, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def isolated_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = stack_env(tmp_path / "state")
    yield env
    run_obslab(env, "down", timeout=180)
