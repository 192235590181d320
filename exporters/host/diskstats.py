"""diskstats: block device I/O counters from /proc/diskstats (whole disks, not partitions)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from obslab.exporters.host._common import HostCollector
from obslab.exporters.registry import register
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

#: Same default as node_exporter: skip RAM disks, loop devices and partitions (their I/O is in the disk's).
IGNORED_DEVICES = re.compile(r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
#: /proc/diskstats counts 512-byte sectors whatever the device's real sector size (Documentation/admin-guide/iostats.rst).
SECTOR = 512


@dataclass
class DiskStats:
    device: str
    reads: int
    reads_merged: int
    read_sectors: int
    read_ms: int
    writes: int
    writes_merged: int
    write_sectors: int
    write_ms: int
    in_progress: int
    io_ms: int
    weighted_io_ms: int


def parse_diskstats(text: str) -> list[DiskStats]:
    """The first 11 counters of each line (kernels 4.18+ add discard and 5.5+ flush columns, not used)."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 14:
            continue
        out.append(DiskStats(f[2], *(int(v) for v in f[3:14])))
    return out


@register
class DiskstatsCollector(HostCollector):
    """Disk I/O: operations, bytes, time busy (utilisation) and weighted time (saturation) per device."""

    name = "diskstats"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        disks = [
            d for d in parse_diskstats(self.read_proc("diskstats")) if not IGNORED_DEVICES.match(d.device)
        ]
        lab = ["device"]
        fams = {
            "reads": CounterMetricFamily("obslab_disk_reads_completed_total", "Reads completed.", labels=lab),
            "writes": CounterMetricFamily(
                "obslab_disk_writes_completed_total", "Writes completed.", labels=lab
            ),
            "reads_merged": CounterMetricFamily(
                "obslab_disk_reads_merged_total", "Adjacent reads merged.", labels=lab
            ),
            "writes_merged": CounterMetricFamily(
                "obslab_disk_writes_merged_total", "Adjacent writes merged.", labels=lab
            ),
            "read_bytes": CounterMetricFamily("obslab_disk_read_bytes_total", "Bytes read.", labels=lab),
            "written_bytes": CounterMetricFamily(
                "obslab_disk_written_bytes_total", "Bytes written.", labels=lab
            ),
            "read_time": CounterMetricFamily(
                "obslab_disk_read_time_seconds_total",
                "Seconds spent by all reads (sum over requests).",
                labels=lab,
            ),
            "write_time": CounterMetricFamily(
                "obslab_disk_write_time_seconds_total",
                "Seconds spent by all writes (sum over requests).",
                labels=lab,
            ),
            "io_time": CounterMetricFamily(
                "obslab_disk_io_time_seconds_total",
                "Seconds the device had I/O in flight (its rate is utilisation).",
                labels=lab,
            ),
            "weighted": CounterMetricFamily(
                "obslab_disk_io_time_weighted_seconds_total",
                "Seconds spent doing I/O weighted by requests in flight (its rate is the average queue size).",
                labels=lab,
            ),
        }
        in_progress = GaugeMetricFamily("obslab_disk_io_now", "I/O requests in flight now.", labels=lab)
        for d in disks:
            k = [d.device]
            fams["reads"].add_metric(k, d.reads)
            fams["writes"].add_metric(k, d.writes)
            fams["reads_merged"].add_metric(k, d.reads_merged)
            fams["writes_merged"].add_metric(k, d.writes_merged)
            fams["read_bytes"].add_metric(k, d.read_sectors * SECTOR)
            fams["written_bytes"].add_metric(k, d.write_sectors * SECTOR)
            fams["read_time"].add_metric(k, d.read_ms / 1000)
            fams["write_time"].add_metric(k, d.write_ms / 1000)
            fams["io_time"].add_metric(k, d.io_ms / 1000)
            fams["weighted"].add_metric(k, d.weighted_io_ms / 1000)
            in_progress.add_metric(k, d.in_progress)
        yield from fams.values()
        yield in_progress
