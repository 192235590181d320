"""pressure: pressure stall information (PSI) for CPU, memory and I/O, from /proc/pressure/*.

PSI exists since Linux 4.20 with CONFIG_PSI=y; some kernels need ``psi=1`` on the command line. Without it
the collector reports no data (quiet), not a failure. The system-wide ``cpu`` file gained a ``full`` line
in 5.13 (always 0 there), so only ``some`` is exported for CPU, as node_exporter does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from obslab.exporters.host._common import HostCollector, read_text
from obslab.exporters.registry import NoData, register
from prometheus_client.core import CounterMetricFamily, Metric


def parse_pressure(text: str) -> dict[str, float]:
    """``some avg10=... total=USEC`` lines → {"some": seconds, "full": seconds} (the cumulative totals)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        for item in rest.split():
            key, _, value = item.partition("=")
            if key == "total":
                out[kind] = int(value) / 1e6
    return out


#: resource → [(kind, metric, help)]; waiting = some (at least one task stalled), stalled = full (all).
FAMILIES = {
    "cpu": [
        ("some", "obslab_pressure_cpu_waiting_seconds_total", "Seconds some runnable tasks waited for a CPU.")
    ],
    "memory": [
        (
            "some",
            "obslab_pressure_memory_waiting_seconds_total",
            "Seconds some tasks stalled on memory (reclaim, swap-in).",
        ),
        (
            "full",
            "obslab_pressure_memory_stalled_seconds_total",
            "Seconds all non-idle tasks stalled on memory at once.",
        ),
    ],
    "io": [
        ("some", "obslab_pressure_io_waiting_seconds_total", "Seconds some tasks stalled waiting for I/O."),
        (
            "full",
            "obslab_pressure_io_stalled_seconds_total",
            "Seconds all non-idle tasks stalled on I/O at once.",
        ),
    ],
}


@register
class PressureCollector(HostCollector):
    """Pressure stall information: seconds tasks waited for CPU, memory and I/O (PSI, Linux 4.20+)."""

    name = "pressure"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        base = self.proc("pressure")
        if not os.path.isdir(base):
            raise NoData(f"{base} does not exist (kernel without CONFIG_PSI or booted without psi=1)")
        for resource, families in FAMILIES.items():
            try:
                values = parse_pressure(read_text(os.path.join(base, resource)))
            except OSError:  # e.g. EOPNOTSUPP when PSI is compiled in but disabled: skip that resource
                continue
            for kind, metric, doc in families:
                if kind in values:
                    yield CounterMetricFamily(metric, doc, value=values[kind])
