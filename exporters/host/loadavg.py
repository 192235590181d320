"""loadavg: the 1, 5 and 15 minute load averages (/proc/loadavg)."""

from __future__ import annotations

from collections.abc import Iterator

from obslab.exporters.host._common import HostCollector
from obslab.exporters.registry import register
from prometheus_client.core import GaugeMetricFamily, Metric


def parse_loadavg(text: str) -> tuple[float, float, float]:
    """``"0.39 0.31 0.23 1/88 18425"`` → (0.39, 0.31, 0.23)."""
    fields = text.split()
    if len(fields) < 3:
        raise ValueError(f"unexpected /proc/loadavg content: {text!r}")
    return float(fields[0]), float(fields[1]), float(fields[2])


@register
class LoadavgCollector(HostCollector):
    """Load average over 1, 5 and 15 minutes (runnable plus uninterruptible tasks)."""

    name = "loadavg"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        values = parse_loadavg(self.read_proc("loadavg"))
        for minutes, value in zip((1, 5, 15), values, strict=True):
            yield GaugeMetricFamily(
                f"obslab_load{minutes}", f"Load average over the last {minutes} minute(s).", value=value
            )
