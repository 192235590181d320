"""filesystem: size, free and available space and inodes per mounted filesystem (statvfs).

Mounts come from ``<procfs>/1/mounts`` (the host's mount namespace, as node_exporter reads it), and each
mount point is looked up under ``--path.rootfs`` (``/`` normally; ``/host`` in a container; a fixture tree
in the tests, which is why every path goes through ``rootfs``). Pseudo filesystems and /dev, /proc, /sys are
skipped, with node_exporter's default patterns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from obslab.exporters.host._common import HostCollector, read_text
from obslab.exporters.registry import register
from prometheus_client.core import GaugeMetricFamily, Metric

IGNORED_FSTYPES = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|"
    r"nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$"
)
IGNORED_MOUNTPOINTS = re.compile(
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    options: str


def _unescape(field: str) -> str:
    # /proc/PID/mounts escapes space, tab, newline and backslash as octal (\040 ...).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    """Mounts to report: ignored types and places dropped, one entry per mount point (the last one wins,
    as it is the one visible at that path)."""
    seen: dict[str, Mount] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        m = Mount(_unescape(f[0]), _unescape(f[1]), f[2], f[3])
        if IGNORED_FSTYPES.match(m.fstype) or IGNORED_MOUNTPOINTS.match(m.mountpoint):
            continue
        seen[m.mountpoint] = m
    return list(seen.values())


@register
class FilesystemCollector(HostCollector):
    """Filesystem size, free and available bytes and inodes, and read-only flag, per mount point."""

    name = "filesystem"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        try:
            text = read_text(self.proc("1", "mounts"))
        except OSError:
            text = self.read_proc("mounts")
        lab = ["device", "mountpoint", "fstype"]
        size = GaugeMetricFamily("obslab_filesystem_size_bytes", "Filesystem size in bytes.", labels=lab)
        free = GaugeMetricFamily(
            "obslab_filesystem_free_bytes", "Free bytes, including those reserved for root.", labels=lab
        )
        avail = GaugeMetricFamily(
            "obslab_filesystem_avail_bytes", "Bytes available to unprivileged users.", labels=lab
        )
        files = GaugeMetricFamily("obslab_filesystem_files", "Inodes in total.", labels=lab)
        files_free = GaugeMetricFamily("obslab_filesystem_files_free", "Free inodes.", labels=lab)
        readonly = GaugeMetricFamily(
            "obslab_filesystem_readonly", "Whether the mount is read-only (1).", labels=lab
        )
        error = GaugeMetricFamily(
            "obslab_filesystem_device_error", "Whether statvfs failed on this mount point (1).", labels=lab
        )
        for m in parse_mounts(text):
            k = [m.device, m.mountpoint, m.fstype]
            path = os.path.join(self.paths.rootfs, m.mountpoint.lstrip("/"))
            try:
                st = os.statvfs(path)
            except OSError:
                error.add_metric(k, 1)
                continue
            error.add_metric(k, 0)
            size.add_metric(k, st.f_blocks * st.f_frsize)
            free.add_metric(k, st.f_bfree * st.f_frsize)
            avail.add_metric(k, st.f_bavail * st.f_frsize)
            files.add_metric(k, st.f_files)
            files_free.add_metric(k, st.f_ffree)
            readonly.add_metric(k, 1 if "ro" in m.options.split(",") else 0)
        yield from (size, free, avail, files, files_free, readonly, error)
