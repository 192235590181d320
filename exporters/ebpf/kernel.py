"""What the running kernel tells user space about its tracepoints and tables, and the pure parsers for it.

Label names come from the running kernel wherever it publishes them (tracefs ``format`` files carry
``__print_symbolic`` tables for drop reasons, softirq vectors and TCP states; /sys/dev/block names block
devices), with built-in fallbacks for older kernels.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
from functools import lru_cache
from pathlib import Path

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def tracefs_root(candidates: tuple[str, ...] = TRACEFS_CANDIDATES) -> Path | None:
    """Where tracefs is mounted (bcc reads tracepoint formats from the same places), or None."""
    for c in candidates:
        if os.path.isdir(os.path.join(c, "events")):
            return Path(c)
    return None


def tracepoint_format(tracepoint: str, root: Path | None = None) -> str | None:
    """The ``format`` file of ``category:event``, or None when the kernel has no such tracepoint."""
    root = root or tracefs_root()
    if root is None:
        return None
    category, _, event = tracepoint.partition(":")
    try:
        return (root / "events" / category / event / "format").read_text()
    except OSError:
        return None


def parse_format_fields(text: str) -> list[str]:
    """Field names of a tracepoint ``format`` file, without the ``common_`` header fields."""
    names = []
    for m in re.finditer(r"field:([^;]*);", text):
        decl = m.group(1).strip()
        name = re.sub(r"\[.*\]$", "", decl.split()[-1])
        if not name.startswith("common_"):
            names.append(name)
    return names


_SYMBOLIC = re.compile(
    r"__print_symbolic\(\s*REC->(\w+)\s*,((?:\s*\{\s*-?\w+\s*,\s*\"[^\"]*\"\s*\}\s*,?)+)\)"
)
_PAIR = re.compile(r"\{\s*(-?\w+)\s*,\s*\"([^\"]*)\"\s*\}")


def parse_print_symbolic(text: str, field: str) -> dict[int, str]:
    """The value → name table a tracepoint's ``print fmt`` gives for ``field`` (first occurrence).

    E.g. ``__print_symbolic(REC->vec, { 0, "HI" }, { 1, "TIMER" })`` → ``{0: "HI", 1: "TIMER"}``.
    """
    for m in _SYMBOLIC.finditer(text):
        if m.group(1) == field:
            return {int(v, 0): name for v, name in _PAIR.findall(m.group(2))}
    return {}


_NR = re.compile(r"^#define\s+__NR_(\w+)\s+(\d+)\s*$", re.M)


def parse_unistd(text: str) -> dict[int, str]:
    """``#define __NR_read 0`` lines of an asm/unistd header → {0: "read"}."""
    return {int(nr): name for name, nr in _NR.findall(text)}


_UNISTD = {
    "x86_64": ("asm/unistd_64.h",),
    "aarch64": ("asm/unistd.h", "asm-generic/unistd.h"),
    "riscv64": ("asm/unistd.h", "asm-generic/unistd.h"),
    "ppc64le": ("asm/unistd_64.h", "asm/unistd.h"),
    "s390x": ("asm/unistd_64.h", "asm/unistd.h"),
}


@lru_cache(maxsize=1)
def syscall_table() -> dict[int, str]:
    """Syscall numbers → names for the running architecture.

    From the installed uapi header (linux-libc-dev) for ``platform.machine()``; else bcc's table (which runs
    ``ausyscall --dump`` when present, else ships an x86_64 list). Empty if neither is there.
    """
    machine = platform.machine()
    multiarch = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(machine, "")
    for rel in _UNISTD.get(machine, ()):
        for base in (f"/usr/include/{multiarch}", "/usr/include"):
            try:
                table = parse_unistd(Path(base, rel).read_text())
            except OSError:
                continue
            if table:
                return table
    try:
        from bcc import syscall as bcc_syscall  # bcc is optional at import time

        if machine == "x86_64" or getattr(bcc_syscall, "syscalls", None):
            return {int(k): v.decode() for k, v in bcc_syscall.syscalls.items()}
    except Exception:
        pass
    return {}


def split_kernel_dev(dev: int) -> tuple[int, int]:
    """A kernel-internal ``dev_t`` (as block tracepoints report it: MAJOR << 20 | MINOR) → (major, minor)."""
    return dev >> 20, dev & 0xFFFFF


def parse_uevent_devname(text: str) -> str | None:
    """DEVNAME from a sysfs ``uevent`` file."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "DEVNAME" and value:
            return value
    return None


class BlockDevices:
    """major:minor → device name via /sys/dev/block (cached; a device appearing later is looked up then)."""

    def __init__(self, sysfs: str = "/sys") -> None:
        self.sysfs = sysfs
        self._cache: dict[tuple[int, int], str] = {}

    def name(self, major: int, minor: int) -> str:
        key = (major, minor)
        if key not in self._cache:
            name = None
            with contextlib.suppress(OSError):
                name = parse_uevent_devname(
                    Path(self.sysfs, "dev/block", f"{major}:{minor}", "uevent").read_text()
                )
            if name is None:  # gone already (a loop device detached): keep the numbers, still bounded
                return f"{major}:{minor}"
            self._cache[key] = name
        return self._cache[key]

    def from_kernel_dev(self, dev: int) -> str:
        return self.name(*split_kernel_dev(dev))


def has_bpf_privileges(status_text: str | None = None, euid: int | None = None) -> bool:
    """Root, or CapEff with CAP_BPF (39) and CAP_PERFMON (38) (kernel ≥ 5.8), or CAP_SYS_ADMIN (21)."""
    if (os.geteuid() if euid is None else euid) == 0:
        return True
    if status_text is None:
        try:
            status_text = Path("/proc/self/status").read_text()
        except OSError:
            return False
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", status_text, re.M)
    if not m:
        return False
    caps = int(m.group(1), 16)
    has = lambda bit: bool(caps >> bit & 1)  # noqa: E731
    return (has(39) and has(38)) or has(21)
