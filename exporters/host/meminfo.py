"""meminfo: memory and swap, from /proc/meminfo."""

from __future__ import annotations

from collections.abc import Iterator

from obslab.exporters.host._common import HostCollector
from obslab.exporters.registry import register
from prometheus_client.core import GaugeMetricFamily, Metric

#: /proc/meminfo key → (metric suffix, help). The fields diagnosis needs; values are kB in the file.
FIELDS: dict[str, tuple[str, str]] = {
    "MemTotal": ("total", "Usable RAM (physical RAM minus reserved and kernel code)."),
    "MemFree": ("free", "RAM not used for anything."),
    "MemAvailable": ("available", "Estimate of RAM available for new work without swapping (kernel 3.14+)."),
    "Buffers": ("buffers", "RAM used for block-device buffers."),
    "Cached": ("cached", "RAM used by the page cache (file contents), excluding swap cache."),
    "SwapCached": ("swap_cached", "Swapped-out memory that is also still in RAM."),
    "Active": ("active", "Memory used recently, not reclaimed unless needed."),
    "Inactive": ("inactive", "Memory not used recently, first candidate for reclaim."),
    "Active(anon)": ("active_anon", "Anonymous memory used recently."),
    "Inactive(anon)": ("inactive_anon", "Anonymous memory not used recently (swap candidate)."),
    "Active(file)": ("active_file", "Page cache used recently."),
    "Inactive(file)": ("inactive_file", "Page cache not used recently (reclaim candidate)."),
    "Dirty": ("dirty", "Memory waiting to be written back to disk."),
    "Writeback": ("writeback", "Memory being written back to disk now."),
    "AnonPages": ("anon", "Anonymous (non-file) pages mapped into user space."),
    "Mapped": ("mapped", "Files mapped into memory (mmap), such as libraries."),
    "Shmem": ("shmem", "Shared memory and tmpfs."),
    "Slab": ("slab", "Kernel slab caches."),
    "SReclaimable": ("slab_reclaimable", "Slab memory the kernel can reclaim (dentries, inodes)."),
    "SUnreclaim": ("slab_unreclaimable", "Slab memory the kernel cannot reclaim."),
    "PageTables": ("page_tables", "Memory used by page tables."),
    "CommitLimit": ("commit_limit", "Total memory that can be committed under the overcommit policy."),
    "Committed_AS": ("committed", "Memory committed by all processes (may exceed RAM)."),
    "SwapTotal": ("swap_total", "Total swap space."),
    "SwapFree": ("swap_free", "Unused swap space."),
}


def parse_meminfo(text: str) -> dict[str, int]:
    """Every ``Key: value [kB]`` line, in bytes (lines without a unit, like HugePages_Total, as-is)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            continue
        value = int(parts[0])
        out[key] = value * 1024 if len(parts) > 1 and parts[1] == "kB" else value
    return out


@register
class MeminfoCollector(HostCollector):
    """RAM and swap: total, available, free, cached, buffers, dirty, slab, swap..."""

    name = "meminfo"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        values = parse_meminfo(self.read_proc("meminfo"))
        for key, (suffix, doc) in FIELDS.items():
            if key in values:
                yield GaugeMetricFamily(f"obslab_memory_{suffix}_bytes", doc, value=values[key])
