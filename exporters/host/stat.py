"""stat: context switches, interrupts, forks, runnable and blocked tasks, boot time (/proc/stat)."""

from __future__ import annotations

from collections.abc import Iterator

from obslab.exporters.host._common import HostCollector
from obslab.exporters.registry import register
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


def parse_stat(text: str) -> dict[str, int]:
    """The single-number lines of /proc/stat: ctxt, btime, processes, procs_running, procs_blocked, and
    the first number of ``intr`` / ``softirq`` (their totals)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key.startswith("cpu") or not rest:
            continue
        first = rest.split(None, 1)[0]
        if first.isdigit():
            out[key] = int(first)
    return out


@register
class StatCollector(HostCollector):
    """Context switches, interrupts, forks, tasks running and blocked on I/O (D state), boot time."""

    name = "stat"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        s = parse_stat(self.read_proc_shared("stat"))
        counters = (
            ("ctxt", "obslab_context_switches_total", "Context switches since boot."),
            ("intr", "obslab_interrupts_total", "Interrupts serviced since boot."),
            ("softirq", "obslab_softirqs_total", "Soft interrupts serviced since boot."),
            ("processes", "obslab_forks_total", "Processes and threads created (forks) since boot."),
        )
        for key, name, doc in counters:
            if key in s:
                yield CounterMetricFamily(name, doc, value=s[key])
        gauges = (
            ("procs_running", "obslab_procs_running", "Tasks runnable (running or waiting for a CPU) now."),
            ("procs_blocked", "obslab_procs_blocked", "Tasks blocked waiting for I/O (D state) now."),
            ("btime", "obslab_boot_time_seconds", "When the machine booted, in seconds since the epoch."),
        )
        for key, name, doc in gauges:
            if key in s:
                yield GaugeMetricFamily(name, doc, value=s[key])
