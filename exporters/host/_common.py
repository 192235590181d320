"""Helpers shared by the host collectors: relocatable paths and cheap file reads."""

from __future__ import annotations

import os
from typing import ClassVar

from obslab.exporters.registry import NoData, Paths

#: Clock ticks per second for /proc times (USER_HZ; 100 on every mainstream Linux build).
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Page size for /proc/PID/stat rss (pages).
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def read_text(path: str) -> str:
    """The whole file as text via one read: /proc files are generated on read, so keep it to one syscall
    sequence (open, read, close) with no buffering layer."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 262144)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


class HostCollector:
    """Base for the built-in collectors: holds the relocatable paths (``--path.procfs`` ...)."""

    name: ClassVar[str]
    default_enabled: ClassVar[bool] = True

    def __init__(self, paths: Paths | None = None):
        self.paths = paths or Paths()

    def proc(self, *parts: str) -> str:
        return os.path.join(self.paths.procfs, *parts)

    def sys(self, *parts: str) -> str:
        return os.path.join(self.paths.sysfs, *parts)

    def read_proc(self, *parts: str) -> str:
        """Read a procfs file; its absence is ``NoData`` (a kernel without that feature), not an error."""
        path = self.proc(*parts)
        try:
            return read_text(path)
        except FileNotFoundError:
            raise NoData(f"{path} does not exist on this kernel") from None

    def read_proc_shared(self, *parts: str) -> str:
        """Like ``read_proc`` but read once per scrape when several collectors need it (/proc/stat)."""
        from obslab.exporters.registry import scrape_cache

        cache = scrape_cache()
        key = "file:" + self.proc(*parts)
        text = cache.get(key)
        if text is None:
            text = cache[key] = self.read_proc(*parts)
        return str(text)
