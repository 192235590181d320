"""Lab tests: each heavy test gets its own state directory (so its own instance id and kernel object names)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from obslab import procs


@pytest.fixture
def lab_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh OBSLAB_STATE_DIR and a free demo port, for this process and the `obslab` it starts."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("OBSLAB_STATE_DIR", str(state))
    monkeypatch.setenv("OBSLAB_DEMO_PORT", str(procs.free_port()))
    yield state
    # Whatever the test did, leave nothing behind for the next one (the reset is itself under test elsewhere).
    if os.geteuid() == 0:
        from obslab.labs import api

        api.reset()
