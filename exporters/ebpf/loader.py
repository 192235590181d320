"""Compile the enabled probes into as few BPF programs as possible, attach them loosely, export their maps.

One bcc compile costs ~0.5-1.5 s and LLVM's memory, so all enabled probes are built as ONE program. If that
fails, each probe is compiled alone to find the culprit(s), which are reported and left out, and the rest are
built together again. A probe whose tracepoint is missing (checked in tracefs before compiling: bcc generates
the argument struct from the tracepoint's ``format`` file, so a missing one is a compile error) or fails to
attach is reported as ``obslab_ebpf_probe_attached{probe} 0``, logged once with the reason, and the others
run ("loose attach", as in cloudflare/ebpf_exporter).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from obslab.exporters.ebpf.kernel import tracefs_root, tracepoint_format
from obslab.exporters.ebpf.probe import PRELUDE, Probe, percpu_total, table
from obslab.exporters.registry import Scrape, as_prometheus_collector
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from obslab import __version__

log = logging.getLogger("obslab.exporters.ebpf")

CFLAGS = ["-Wno-ignored-attributes"]  # bcc 0.26 + newer kernel headers: harmless nocf_check warnings


@dataclass
class ProbeStatus:
    probe: Probe
    attached: bool = False
    reason: str = ""
    bpf: Any = None
    raw: list[str] = field(default_factory=list)  # tracepoints attached as raw tracepoints

    @property
    def name(self) -> str:
        return self.probe.name


@contextlib.contextmanager
def captured_stderr() -> Iterator[Callable[[], str]]:
    """Capture fd 2 (libbcc prints compiler errors there, not into the Python exception)."""
    sys_fd = 2
    saved = os.dup(sys_fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), sys_fd)
        text: list[str] = []
        try:
            yield lambda: "".join(text)
        finally:
            os.dup2(saved, sys_fd)
            os.close(saved)
            tmp.seek(0)
            text.append(tmp.read().decode(errors="replace"))


def first_error(compiler_output: str) -> str:
    """The first ``error:`` line of clang output (what to tell the user), or its first line."""
    lines = [ln.strip() for ln in compiler_output.splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln:
            return ln.split("error:", 1)[1].strip()
    return lines[0] if lines else "unknown compiler error"


def program_source(probes: Iterable[Probe]) -> str:
    return PRELUDE + "\n".join(f"/* ---- probe {p.name} ---- */\n{p.source}" for p in probes)


class ProbeSet:
    """The lifecycle of the enabled probes: ``start()`` compiles and attaches, ``close()`` detaches."""

    def __init__(self, probes: Iterable[Probe]) -> None:
        self.status: dict[str, ProbeStatus] = {p.name: ProbeStatus(p) for p in probes}
        self.programs: list[Any] = []
        self.compile_seconds = 0.0
        self._scrape = Scrape(collectors={})

    # -- start-up ----------------------------------------------------------------------------------------

    def _fail(self, st: ProbeStatus, reason: str) -> None:
        st.attached, st.reason = False, reason
        log.warning("probe %s not attached: %s", st.name, reason)

    def _compile(self, probes: list[Probe]) -> tuple[Any, str]:
        from bcc import BPF  # bcc only where BPF is really used

        with captured_stderr() as output:
            try:
                return BPF(text=program_source(probes).encode(), cflags=CFLAGS), ""
            except Exception as e:
                err: BaseException = e
        return None, first_error(output()) if output() else str(err)

    def start(self) -> None:
        started = time.perf_counter()
        candidates: list[ProbeStatus] = []
        if tracefs_root() is None:
            for st in self.status.values():
                self._fail(st, "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)")
        else:
            for st in self.status.values():
                missing = [tp for tp in st.probe.tracepoints if tracepoint_format(tp) is None]
                if missing:
                    self._fail(st, f"tracepoint {', '.join(missing)} not in this kernel")
                    continue
                try:
                    st.probe.setup()
                except OSError as e:
                    self._fail(st, f"setup failed: {e}")
                    continue
                candidates.append(st)

        if candidates:
            bpf, error = self._compile([st.probe for st in candidates])
            if bpf is None:
                log.info("combined BPF program failed to compile (%s); compiling probes one by one", error)
                good = []
                for st in candidates:
                    one, why = self._compile([st.probe])
                    if one is None:
                        self._fail(st, f"does not compile: {why}")
                    else:
                        one.cleanup()
                        good.append(st)
                candidates = good
                bpf = self._compile([st.probe for st in candidates])[0] if candidates else None
            if bpf is not None:
                self.programs.append(bpf)
                for st in candidates:
                    st.bpf = bpf
                    self._attach(st)
        self.compile_seconds = time.perf_counter() - started
        self._scrape = Scrape(
            collectors={st.name: _Bound(st.probe, st.bpf) for st in self.status.values() if st.attached}
        )

    def _attach(self, st: ProbeStatus) -> None:
        done: list[tuple[str, bool]] = []  # (tracepoint, raw)
        for tp, fn in st.probe.handlers.items():
            # OBSLAB_EBPF_NO_RAW=1 forces classic tracepoints (to compare costs, or on a kernel that
            # mishandles raw ones).
            raw_fn = None if os.environ.get("OBSLAB_EBPF_NO_RAW") else st.probe.raw_handlers.get(tp)
            if raw_fn is not None:
                try:  # raw tracepoints (kernel >= 4.17) skip building the trace record: much cheaper
                    st.bpf.attach_raw_tracepoint(tp=tp.partition(":")[2].encode(), fn_name=raw_fn.encode())
                    done.append((tp, True))
                    continue
                except Exception as e:
                    log.info(
                        "probe %s: raw tracepoint %s refused (%s); using the classic one", st.name, tp, e
                    )
            try:
                st.bpf.attach_tracepoint(tp=tp.encode(), fn_name=fn.encode())
            except Exception as e:  # bcc raises plain Exception (verifier rejection, perf_event_open)
                for d, raw in done:
                    with contextlib.suppress(Exception):
                        if raw:
                            st.bpf.detach_raw_tracepoint(tp=d.partition(":")[2].encode())
                        else:
                            st.bpf.detach_tracepoint(tp=d.encode())
                self._fail(st, f"cannot attach to {tp}: {e}")
                return
            done.append((tp, False))
        st.attached, st.reason = True, ""
        st.raw = [tp for tp, raw in done if raw]
        log.debug(
            "probe %s attached to %s", st.name, ", ".join(tp + (" (raw)" if raw else "") for tp, raw in done)
        )

    def close(self) -> None:
        """Detach every program (also done by the kernel when the process exits)."""
        for bpf in self.programs:
            with contextlib.suppress(Exception):
                bpf.cleanup()
        self.programs.clear()
        for st in self.status.values():
            st.attached, st.bpf = False, None

    def __enter__(self) -> ProbeSet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metrics -----------------------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        build = GaugeMetricFamily(
            "obslab_build_info",
            "obslab's version and Python version; the value is always 1.",
            labels=["version", "python"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield build
        attached = GaugeMetricFamily(
            "obslab_ebpf_probe_attached",
            "Whether the probe's BPF programs are attached to all its tracepoints (1) or not (0).",
            labels=["probe"],
        )
        errors = CounterMetricFamily(
            "obslab_ebpf_probe_errors_total",
            "Events the probe lost because a BPF map was full (its numbers undercount by this much).",
            labels=["probe"],
        )
        for st in self.status.values():
            attached.add_metric([st.name], 1.0 if st.attached else 0.0)
            if st.attached and st.probe.errors_map:
                with contextlib.suppress(Exception):
                    errors.add_metric(
                        [st.name], sum(percpu_total(v) for v in table(st.bpf, st.probe.errors_map).values())
                    )
        yield attached
        yield errors
        programs = GaugeMetricFamily(
            "obslab_ebpf_programs", "BPF programs (compiled modules) loaded by this exporter."
        )
        programs.add_metric([], len(self.programs))
        yield programs
        startup = GaugeMetricFamily(
            "obslab_ebpf_startup_seconds",
            "Time spent compiling and attaching the probes at start-up, in seconds.",
        )
        startup.add_metric([], self.compile_seconds)
        yield startup
        yield from self._scrape.collect()

    def registry(self) -> CollectorRegistry:
        reg = CollectorRegistry(auto_describe=False)
        reg.register(as_prometheus_collector(self))
        return reg


class _Bound:
    """A probe bound to its compiled program: the ``collect()`` shape the Scrape wrapper expects."""

    def __init__(self, probe: Probe, bpf: Any) -> None:
        self.probe, self.bpf = probe, bpf

    def collect(self) -> Iterable[Metric]:
        return self.probe.collect(self.bpf)
