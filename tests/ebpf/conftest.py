"""eBPF test fixtures: one shared ProbeSet (one compile for the whole module), polling helpers, cleanup."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from functools import lru_cache

import pytest
from prometheus_client import CollectorRegistry


@lru_cache(maxsize=1)
def bpf_unavailable() -> str | None:
    """Why this machine cannot run BPF at all (None when it can): the only reason to skip these tests."""
    if os.geteuid() != 0:
        return "needs root (or CAP_BPF + CAP_PERFMON) to load BPF programs"
    try:
        from bcc import BPF
    except ImportError as e:
        return f"bcc is not importable ({e}); `make setup` installs python3-bpfcc"
    from obslab.exporters.ebpf.kernel import tracefs_root

    if tracefs_root() is None:
        return "tracefs is not mounted"
    try:
        BPF(text=b"int obslab_ping(void *ctx) { return 0; }", cflags=["-Wno-ignored-attributes"]).cleanup()
    except Exception as e:
        return f"the kernel refuses BPF programs: {e}"
    return None


requires_bpf = pytest.mark.skipif(bpf_unavailable() is not None, reason=str(bpf_unavailable()))


@pytest.fixture(scope="session")
def probeset() -> Iterator[object]:
    """All built-in probes, compiled once and attached for the whole session; detached at the end."""
    reason = bpf_unavailable()
    if reason:
        pytest.skip(reason)
    from obslab.exporters.ebpf.loader import ProbeSet
    from obslab.exporters.ebpf.probes import PROBES

    ps = ProbeSet([info.cls() for info in PROBES.values()])
    ps.start()
    try:
        yield ps
    finally:
        ps.close()


@pytest.fixture(scope="session")
def registry(probeset: object) -> CollectorRegistry:
    return probeset.registry()  # type: ignore[attr-defined,no-any-return]


def value(reg: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample's value now, 0 when the series does not exist (yet)."""
    return reg.get_sample_value(name, labels or {}) or 0.0


def poll(check: Callable[[], bool], timeout: float = 30.0, interval: float = 0.2) -> bool:
    """Poll until ``check()`` holds (a busy shared 2-core box: generous deadlines, no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def run(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=timeout)
