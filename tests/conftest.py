"""Shared test fixtures: an isolated state directory, root checks, a real Prometheus, artifacts.

Each area keeps its own tests (and its own conftest.py) in tests/<area>/.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from obslab.paths import REPO_ROOT, find_binary
from obslab.prom import PrometheusServer, ScrapeJob, render_config

# Tests never write to the user's real state directory (/var/lib/obslab): one fresh directory per run.
_STATE = tempfile.mkdtemp(prefix="obslab-test-state-")
os.environ["OBSLAB_STATE_DIR"] = _STATE

ARTIFACTS = REPO_ROOT / "artifacts"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_STATE, ignore_errors=True)


def is_root() -> bool:
    return os.geteuid() == 0


requires_root = pytest.mark.skipif(not is_root(), reason="needs root (cgroups, namespaces, BPF); run as root")


def require_binary(name: str) -> str:
    """The path of a system binary the test needs; a missing one fails loudly (setup installs it)."""
    path = find_binary(name)
    if not path:
        pytest.fail(f"{name} is not installed; `make setup` should have installed it")
    return path


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def make_prometheus() -> Iterator[Callable[..., PrometheusServer]]:
    """Start a real Prometheus scraping the given jobs: ``prom = make_prometheus([ScrapeJob(...)], ...)``."""
    started: list[PrometheusServer] = []

    def _make(jobs: list[ScrapeJob], scrape_interval: str = "1s", **kwargs: object) -> PrometheusServer:
        extra_args = kwargs.pop("extra_args", ())
        text = render_config(jobs, scrape_interval=scrape_interval, **kwargs)  # type: ignore[arg-type]
        server = PrometheusServer(text, extra_args=extra_args)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield _make
    for server in started:
        server.stop()


def as_nobody() -> list[str]:
    """Argv prefix that runs a command as user nobody, with no capability but CAP_DAC_READ_SEARCH.

    That one capability only lets the child reach this checkout and its .venv when they sit in a directory
    other users cannot traverse (``mktemp -d`` makes 0700 ones, as CI's clone may be); it grants nothing that
    root-only code paths (BPF, cgroups, namespaces) check for, so the child is unprivileged for them.
    """
    setpriv = find_binary("setpriv")
    if setpriv is None or not is_root():
        pytest.skip("needs root and setpriv (util-linux) to drop to an unprivileged user")
    return [
        setpriv,
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
    ]
