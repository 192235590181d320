"""build_info: obslab's version, as a constant 1 with labels (the Prometheus build_info convention)."""

from __future__ import annotations

import platform
from collections.abc import Iterator

from obslab.exporters.host._common import HostCollector
from obslab.exporters.registry import register
from prometheus_client.core import GaugeMetricFamily, Metric

from obslab import __version__


@register
class BuildInfoCollector(HostCollector):
    """obslab's version and the Python it runs on (always 1)."""

    name = "build_info"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "obslab_build_info",
            "obslab's version and Python version; the value is always 1.",
            labels=["version", "python"],
        )
        info.add_metric([__version__, platform.python_version()], 1)
        yield info
