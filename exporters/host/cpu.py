"""cpu: seconds each CPU spent in each mode, from /proc/stat (node_exporter's cpu collector)."""

from __future__ import annotations

from collections.abc import Iterator

from obslab.exporters.host._common import CLK_TCK, HostCollector
from obslab.exporters.registry import register
from prometheus_client.core import CounterMetricFamily, Metric

#: /proc/stat column order (proc(5)). guest and guest_nice are already included in user and nice, so, like
#: node_exporter, they are exported separately rather than as modes (summing modes must give wall time).
MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
GUEST = ("guest", "guest_nice")


def parse_cpu_lines(text: str) -> dict[str, list[int]]:
    """Per-CPU tick counters from /proc/stat: ``{"0": [user, nice, ...], ...}`` (the "cpu" total is skipped)."""
    out: dict[str, list[int]] = {}
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        fields = line.split()
        out[fields[0][3:]] = [int(v) for v in fields[1:]]
    return out


@register
class CPUCollector(HostCollector):
    """Seconds each CPU spent in each mode (user, system, idle, iowait, steal...)."""

    name = "cpu"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        cpus = parse_cpu_lines(self.read_proc_shared("stat"))
        seconds = CounterMetricFamily(
            "obslab_cpu_seconds_total", "Seconds the CPU spent in each mode.", labels=["cpu", "mode"]
        )
        guest = CounterMetricFamily(
            "obslab_cpu_guest_seconds_total",
            "Seconds the CPU spent running virtual CPUs for guests (also counted in user and nice).",
            labels=["cpu", "mode"],
        )
        for cpu, ticks in cpus.items():
            for mode, value in zip(MODES, ticks, strict=False):
                seconds.add_metric([cpu, mode], value / CLK_TCK)
            for mode, value in zip(("user", "nice"), ticks[8:10], strict=False):
                guest.add_metric([cpu, mode], value / CLK_TCK)
        yield seconds
        yield guest
