"""process: per-process CPU, memory, I/O, threads and open files, aggregated by process name.

Bounded labels: at most ``MAX_NAMES`` names get their own series; every other process is summed into
``name="other"``. Membership is sticky: a name keeps its series while it has live processes; a free slot
goes to the busiest name outside (by CPU since the last scrape), and a name idle since the last scrape may
give its slot to a busier one. Kernel threads are grouped by the part of their name before ``/``
(``kworker/0:1H`` → ``kworker``).

Counters stay monotonic although processes come and go: each exported counter accumulates the *increase*
of its processes between scrapes (a process seen for the first time contributes its whole value), so a
process that exits takes nothing away, and a name moving into or out of ``other`` does not make either
series drop. What a process does between its last scrape and its exit is not counted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

from obslab.exporters.host._common import CLK_TCK, PAGE_SIZE, HostCollector
from obslab.exporters.host._procscan import read_bytes, scan
from obslab.exporters.registry import Paths, register
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

#: Process names exported on their own; all others are summed into OTHER.
MAX_NAMES = 40
OTHER = "other"
#: At most this many slots change hands per scrape (keeps series stable under a churn of names).
MAX_SWAPS_PER_SCRAPE = 4


def parse_pid_io(data: bytes) -> tuple[int, int]:
    """/proc/PID/io → (read_bytes, write_bytes): bytes that reached the storage layer (not the cache)."""
    read = write = 0
    for line in data.split(b"\n"):
        if line.startswith(b"read_bytes:"):
            read = int(line[11:])
        elif line.startswith(b"write_bytes:"):
            write = int(line[12:])
    return read, write


def group_name(comm: str, kthread: bool) -> str:
    if kthread:
        return comm.split("/", 1)[0]
    return comm


def _fd_count_by_size(procfs: str) -> bool:
    """Whether ``st_size`` of /proc/PID/fd is the open-fd count here.

    Linux 6.2 made a stat of /proc/PID/fd report the number of open fds in ``st_size`` ("proc: report
    open files as size in stat() for /proc/pid/fd", Ivan Babrou): one stat instead of listing the directory. Older
    kernels report 0, and a fixture tree is a plain directory, so probe this process's own fds: use the
    fast path only where the two ways agree.
    """
    try:
        own = os.stat(f"{procfs}/self/fd").st_size
        listed = len(os.listdir(f"{procfs}/self/fd")) - 1  # listdir's own directory fd shows in the list
    except OSError:
        return False
    return own > 0 and abs(own - listed) <= 1


class _Totals:
    __slots__ = ("count", "cpu", "fds", "read", "rss", "threads", "write")

    def __init__(self) -> None:
        self.count = self.rss = self.threads = self.fds = 0
        self.cpu = self.read = self.write = 0


@register
class ProcessCollector(HostCollector):
    """Per-process CPU, memory, disk I/O, threads and open fds, summed by process name (top 40 + other)."""

    name = "process"
    default_enabled = True

    def __init__(self, paths: Paths | None = None):
        super().__init__(paths)
        self._lock = threading.Lock()
        self._fd_by_size = _fd_count_by_size(self.paths.procfs)
        # (pid, starttime) → (group, cpu ticks, read bytes, write bytes, open fds) at the previous scrape.
        self._prev: dict[tuple[int, int], tuple[str, int, int, int, int]] = {}
        # exported series → accumulated counters [cpu ticks, read bytes, write bytes]
        self._acc: dict[str, list[int]] = {OTHER: [0, 0, 0]}
        self._top: set[str] = set()

    def _fds(self, base: str) -> int:
        if self._fd_by_size:
            return os.stat(base + "/fd").st_size
        return len(os.listdir(base + "/fd"))

    def collect(self) -> list[Metric]:
        with self._lock:  # concurrent scrapes would double-count increases
            return list(self._collect())

    def _collect(self) -> Iterator[Metric]:
        procfs = self.paths.procfs
        live: dict[str, _Totals] = {}
        # per group: increases since the previous scrape [cpu, read, write]
        delta: dict[str, list[int]] = {}
        prev = self._prev
        now: dict[tuple[int, int], tuple[str, int, int, int, int]] = {}
        for pid, comm, _state, kthread, utime, stime, nthreads, starttime, rss_pages in scan(procfs):
            group = comm.split("/", 1)[0] if kthread else comm  # group_name(), inlined: hot loop
            cpu = utime + stime
            key = (pid, starttime)
            before = prev.get(key)
            if before is not None and before[1] == cpu and before[0] == group:
                # Not a clock tick of CPU since the last scrape: it cannot have issued I/O or opened files
                # worth a tick, so reuse last scrape's io and fd values instead of two more syscalls per
                # idle process (/proc/PID/io alone costs ~10 µs here). utime+stime are scaled from the exact
                # runtime (cputime_adjust), so activity is seen within 10 ms of CPU; only what a process does
                # in under one tick of CPU shows up one scrape late.
                read, write, fds = before[2], before[3], before[4]
            else:
                read = write = fds = 0
                if not kthread:  # kernel threads have no files and no I/O accounting of their own
                    base = f"{procfs}/{pid}"
                    try:  # noqa: SIM105  (try/except is cheaper than contextlib.suppress in this per-process loop)
                        read, write = parse_pid_io(read_bytes(base + "/io"))
                    except OSError:  # gone, or not ours to read (unprivileged exporter): count what we have
                        pass
                    try:  # noqa: SIM105
                        fds = self._fds(base)
                    except OSError:
                        pass
            now[key] = (group, cpu, read, write, fds)
            t = live.get(group)
            if t is None:
                t = live[group] = _Totals()
                d = delta[group] = [0, 0, 0]
            else:
                d = delta[group]
            t.count += 1
            t.cpu += cpu
            t.read += read
            t.write += write
            t.rss += rss_pages
            t.threads += nthreads
            t.fds += fds
            if before is None or before[0] != group:  # new process (or it exec'd into another name)
                d[0] += cpu
                d[1] += read
                d[2] += write
            else:
                d[0] += cpu - before[1] if cpu > before[1] else 0
                d[1] += read - before[2] if read > before[2] else 0
                d[2] += write - before[3] if write > before[3] else 0
        self._prev = now
        self._update_top(live, delta)
        yield from self._families(live, delta)

    def _update_top(self, live: dict[str, _Totals], delta: dict[str, list[int]]) -> None:
        acc, top = self._acc, self._top
        for name in [n for n in top if n not in live]:  # no process left: the series ends
            top.discard(name)
            acc.pop(name, None)
        outside = sorted(
            (n for n in live if n not in top), key=lambda n: (delta[n][0], live[n].cpu), reverse=True
        )
        swaps = 0
        for name in outside:
            if len(top) >= MAX_NAMES:
                if swaps >= MAX_SWAPS_PER_SCRAPE:
                    break
                idlest = min(top, key=lambda n: (delta[n][0], live[n].cpu))
                if delta[idlest][0] >= delta[name][0] or delta[name][0] == 0:
                    break
                top.discard(idlest)  # its future increases go to "other"; its series ends
                acc.pop(idlest, None)
                swaps += 1
            top.add(name)
            # A new series starts at the name's live total; "other" keeps what it had counted.
            acc[name] = [
                live[name].cpu - delta[name][0],
                live[name].read - delta[name][1],
                live[name].write - delta[name][2],
            ]

    def _families(self, live: dict[str, _Totals], delta: dict[str, list[int]]) -> Iterator[Metric]:
        lab = ["name"]
        count = GaugeMetricFamily("obslab_process_instances", "Processes running with this name.", labels=lab)
        cpu = CounterMetricFamily(
            "obslab_process_cpu_seconds_total",
            "CPU seconds (user + system) used by processes with this name.",
            labels=lab,
        )
        rss = GaugeMetricFamily(
            "obslab_process_resident_memory_bytes",
            "Resident memory (RSS) of processes with this name.",
            labels=lab,
        )
        read = CounterMetricFamily(
            "obslab_process_read_bytes_total", "Bytes processes with this name read from storage.", labels=lab
        )
        write = CounterMetricFamily(
            "obslab_process_written_bytes_total",
            "Bytes processes with this name caused to be written to storage.",
            labels=lab,
        )
        threads = GaugeMetricFamily(
            "obslab_process_threads", "Threads of processes with this name.", labels=lab
        )
        fds = GaugeMetricFamily(
            "obslab_process_open_fds", "Open file descriptors of processes with this name.", labels=lab
        )
        other = _Totals()
        acc = self._acc
        for name in sorted(live):
            t, d = live[name], delta[name]
            if name in self._top:
                series, a = name, acc[name]
            else:
                series, a = None, acc[OTHER]
                other.count += t.count
                other.rss += t.rss
                other.threads += t.threads
                other.fds += t.fds
            a[0] += d[0]
            a[1] += d[1]
            a[2] += d[2]
            if series is not None:
                self._emit(series, t, a, count, cpu, rss, read, write, threads, fds)
        self._emit(OTHER, other, acc[OTHER], count, cpu, rss, read, write, threads, fds)
        yield from (count, cpu, rss, read, write, threads, fds)

    @staticmethod
    def _emit(name: str, t: _Totals, a: list[int], *fams: Metric) -> None:
        count, cpu, rss, read, write, threads, fds = fams
        k = [name]
        count.add_metric(k, t.count)  # type: ignore[attr-defined]
        cpu.add_metric(k, a[0] / CLK_TCK)  # type: ignore[attr-defined]
        rss.add_metric(k, t.rss * PAGE_SIZE)  # type: ignore[attr-defined]
        read.add_metric(k, a[1])  # type: ignore[attr-defined]
        write.add_metric(k, a[2])  # type: ignore[attr-defined]
        threads.add_metric(k, t.threads)  # type: ignore[attr-defined]
        fds.add_metric(k, t.fds)  # type: ignore[attr-defined]
