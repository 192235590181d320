"""Loose attach: a probe on a missing tracepoint, or one that does not compile, is reported; others run."""

from __future__ import annotations

import subprocess
from typing import ClassVar

import pytest
from obslab.exporters.ebpf.execs import Execs
from obslab.exporters.ebpf.loader import ProbeSet
from obslab.exporters.ebpf.probe import Counter, Probe

from .conftest import poll, requires_bpf, value

pytestmark = [requires_bpf, pytest.mark.root, pytest.mark.bpf]


class MissingTracepoint(Probe):
    """A probe on a tracepoint no kernel has."""

    name = "missing_tp"
    handlers: ClassVar[dict[str, str]] = {"obslabtest_nosuch:event": "obslabtest_missing"}
    exports = (Counter("obslabtest_missing_total", "Never counted."),)
    source = r"""
BPF_PERCPU_ARRAY(obslabtest_missing_total, u64, 1);
int obslabtest_missing(struct tracepoint__obslabtest_nosuch__event *args) { return 0; }
"""


class Broken(Probe):
    """A probe whose C does not compile (found by the per-probe fallback)."""

    name = "broken"
    handlers: ClassVar[dict[str, str]] = {"sched:sched_process_exit": "obslabtest_broken"}
    exports = ()
    source = (
        "int obslabtest_broken(struct tracepoint__sched__sched_process_exit *args) { return no_such_var; }"
    )


def test_missing_tracepoint_and_broken_probe_reported_while_others_work() -> None:
    with ProbeSet([Execs(), MissingTracepoint(), Broken()]) as ps:
        reg = ps.registry()
        assert value(reg, "obslab_ebpf_probe_attached", {"probe": "execs"}) == 1.0
        assert reg.get_sample_value("obslab_ebpf_probe_attached", {"probe": "missing_tp"}) == 0.0
        assert reg.get_sample_value("obslab_ebpf_probe_attached", {"probe": "broken"}) == 0.0
        assert "obslabtest_nosuch:event not in this kernel" in ps.status["missing_tp"].reason
        assert "no_such_var" in ps.status["broken"].reason
        assert value(reg, "obslab_ebpf_programs") == 1.0  # the good probes rebuilt as one program

        before = value(reg, "obslab_process_execs_total")
        for _ in range(10):
            subprocess.run(["/bin/true"], check=True)
        assert poll(lambda: value(reg, "obslab_process_execs_total") - before >= 10)
        # a probe that is not attached exports nothing (no stale or fake zeros)
        assert reg.get_sample_value("obslabtest_missing_total") is None
