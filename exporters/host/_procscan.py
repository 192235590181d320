"""One scan of /proc/PID/stat per scrape, shared by the ``processes`` and ``process`` collectors.

Everything both need is in /proc/PID/stat (comm, state, flags, utime, stime, num_threads, starttime, rss),
so a scrape reads one file per process for them (psutil would read stat, status and statm). Processes that
vanish between listing /proc and reading their files are normal and silently skipped.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from obslab.exporters.registry import scrape_cache

#: PF_KTHREAD in include/linux/sched.h: the task is a kernel thread (no user memory, no files).
PF_KTHREAD = 0x00200000


class PidStat(NamedTuple):
    pid: int
    comm: str
    state: str
    kthread: bool
    utime: int  # clock ticks
    stime: int  # clock ticks
    threads: int
    starttime: int  # clock ticks after boot: (pid, starttime) identifies a process across PID reuse
    rss_pages: int


def parse_pid_stat(pid: int, data: bytes) -> PidStat:
    """Parse /proc/PID/stat. comm (field 2) may hold spaces and ')', so split after the last ')'."""
    close = data.rindex(b")")
    comm = data[data.index(b"(") + 1 : close].decode("utf-8", "replace")
    f = data[close + 2 :].split()
    # f[0] is field 3 (state); field N is f[N - 3] (proc(5)).
    return PidStat(
        pid,
        comm,
        f[0].decode(),
        bool(int(f[6]) & PF_KTHREAD),
        int(f[11]),
        int(f[12]),
        int(f[17]),
        int(f[19]),
        int(f[21]),
    )


def read_bytes(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def scan(procfs: str) -> list[PidStat]:
    """Every process's stat, read once per scrape (cached in the registry's per-scrape cache)."""
    cache = scrape_cache()
    key = "procscan:" + procfs
    found = cache.get(key)
    if found is not None:
        return list(found)
    out: list[PidStat] = []
    append = out.append
    for name in os.listdir(procfs):
        if not name.isdigit():
            continue
        try:
            data = read_bytes(f"{procfs}/{name}/stat")
        except OSError:  # exited since listdir: normal
            continue
        try:
            append(parse_pid_stat(int(name), data))
        except (ValueError, IndexError):  # an empty read from a process being reaped
            continue
    cache[key] = out
    return out
