"""vmstat: virtual memory event counters (OOM kills, major faults, swapping, reclaim) from /proc/vmstat."""

from __future__ import annotations

from collections.abc import Iterator

from obslab.exporters.host._common import HostCollector
from obslab.exporters.registry import register
from prometheus_client.core import CounterMetricFamily, Metric

#: The counters diagnosis needs → help. Exported as ``obslab_vmstat_<name>_total``.
FIELDS: dict[str, str] = {
    "oom_kill": "Processes killed by the kernel's OOM killer (Linux 4.13+).",
    "pgfault": "Page faults (minor and major).",
    "pgmajfault": "Major page faults: the page had to be read from disk or swap.",
    "pgpgin": "Kilobytes paged in from block devices.",
    "pgpgout": "Kilobytes paged out to block devices.",
    "pswpin": "Pages swapped in.",
    "pswpout": "Pages swapped out.",
    "pgscan_kswapd": "Pages scanned by the background reclaimer (kswapd).",
    "pgscan_direct": "Pages scanned by direct reclaim (a task allocating had to reclaim: latency).",
    "pgsteal_kswapd": "Pages reclaimed by kswapd.",
    "pgsteal_direct": "Pages reclaimed by direct reclaim.",
    "allocstall_normal": "Times a task entered direct reclaim in the normal zone.",
    "workingset_refault_file": "Page cache pages read back soon after eviction (thrashing).",
}


def parse_vmstat(text: str) -> dict[str, int]:
    """``name value`` lines → {name: value}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value:
            out[key] = int(value)
    return out


@register
class VmstatCollector(HostCollector):
    """Virtual memory events: OOM kills, major faults, swap in/out, page scans and reclaim."""

    name = "vmstat"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        values = parse_vmstat(self.read_proc("vmstat"))
        for key, doc in FIELDS.items():
            if key in values:
                yield CounterMetricFamily(f"obslab_vmstat_{key}_total", doc, value=values[key])
