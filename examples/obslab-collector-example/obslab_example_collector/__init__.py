"""An example obslab collector living in its own package: seconds since boot, from /proc/uptime.

obslab finds it through the ``obslab.collectors`` entry point declared in pyproject.toml; once installed,
``obslab exporter host --help`` lists ``--collector.example_uptime`` and /metrics carries its family.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from obslab.exporters.registry import NoData, Paths
from prometheus_client.core import GaugeMetricFamily, Metric


class UptimeCollector:
    """Seconds since the machine booted (example plugin)."""

    name = "example_uptime"
    default_enabled = True

    def __init__(self, paths: Paths):
        self.path = os.path.join(paths.procfs, "uptime")

    def collect(self) -> Iterator[Metric]:
        try:
            with open(self.path) as f:
                uptime = float(f.read().split()[0])
        except FileNotFoundError:
            raise NoData(f"{self.path} does not exist") from None
        yield GaugeMetricFamily(
            "obslab_example_uptime_seconds", "Seconds since the machine booted.", value=uptime
        )
