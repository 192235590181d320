"""cgroups: CPU use and throttling, memory use, limit and OOM kills per cgroup, for cgroup v1 and v2.

Which cgroups (bounded, so labels stay few): every cgroup one level below the root (at most
``MAX_TOP_LEVEL``) and obslab's own lab cgroups, ``/obslab`` and its descendants down to
``OBSLAB_DEPTH`` levels (at most ``MAX_OBSLAB``). Every watched cgroup exports every series, at 0 when a
controller is not enabled for it (a v2 cgroup without the cpu controller has no throttling, say), so a
dashboard panel never goes blank for a cgroup that exists.

One small interface, two implementations: ``CgroupV2`` reads the unified hierarchy at
``<sysfs>/fs/cgroup`` (cpu.stat, cpu.max, memory.current, memory.max, memory.events); ``CgroupV1`` reads
the per-controller hierarchies ``<sysfs>/fs/cgroup/{cpu,cpuacct,memory}`` (cpu.stat, cpuacct.usage,
cpu.cfs_*, memory.usage_in_bytes, memory.limit_in_bytes, memory.failcnt, memory.oom_control). On a hybrid
machine (v1 controllers plus an empty unified tree) the v1 hierarchies are the ones with data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Protocol

from obslab.exporters.host._common import HostCollector, read_text
from obslab.exporters.host.pressure import parse_pressure
from obslab.exporters.registry import NoData, register
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

MAX_TOP_LEVEL = 32
MAX_OBSLAB = 32
OBSLAB_DEPTH = 4  # obslab/<instance>/app/svc: the labs sandbox layout (labs/sandbox.py)
OBSLAB_ROOT = "obslab"
#: v1 reports "no limit" as a huge page-aligned number (PAGE_COUNTER_MAX pages); anything this big is none.
V1_UNLIMITED = 1 << 62


@dataclass
class CgroupStats:
    cpu_usage_seconds: float = 0.0
    cpu_throttled_seconds: float = 0.0
    cpu_throttled_periods: int = 0
    cpu_periods: int = 0
    cpu_limit_cores: float = 0.0  # 0 = no quota
    memory_usage_bytes: int = 0
    memory_limit_bytes: int = 0  # 0 = no limit
    memory_limit_hits: int = 0
    memory_oom_kills: int = 0
    #: v2 only: PSI per cgroup, {("cpu", "some"): seconds, ...}; v1 has no per-cgroup PSI.
    pressure: dict[tuple[str, str], float] = field(default_factory=dict)


def parse_flat_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (cpu.stat, memory.events, memory.oom_control) → {key: value}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def parse_cpu_max(text: str) -> float:
    """v2 cpu.max ``"50000 100000"`` → 0.5 cores; ``"max 100000"`` → 0 (no quota)."""
    quota, _, period = text.strip().partition(" ")
    if quota == "max" or not period:
        return 0.0
    return int(quota) / int(period)


def parse_memory_max(text: str) -> int:
    """v2 memory.max ``"max"`` → 0 (no limit), otherwise bytes."""
    text = text.strip()
    return 0 if text == "max" else int(text)


def _read(path: str) -> str | None:
    try:
        return read_text(path)
    except OSError:  # controller not enabled here, or the cgroup went away: its series read 0
        return None


class Hierarchy(Protocol):
    mode: str

    def cgroups(self) -> list[str]: ...

    def stats(self, cgroup: str) -> CgroupStats: ...


def _children(base: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def _watched(roots: list[str]) -> list[str]:
    """Top-level cgroups and obslab's subtree, as paths like ``/obslab/cpu-lab``, found in any root."""
    top: set[str] = set()
    mine: set[str] = set()
    for root in roots:
        top.update(_children(root))
        stack = [(OBSLAB_ROOT, 1)]
        while stack:
            rel, depth = stack.pop()
            if not os.path.isdir(os.path.join(root, rel)):
                continue
            mine.add(rel)
            if depth < OBSLAB_DEPTH:
                stack.extend((f"{rel}/{c}", depth + 1) for c in _children(os.path.join(root, rel)))
    mine_sorted = sorted(mine)[:MAX_OBSLAB]
    rest = sorted(top - {OBSLAB_ROOT})[:MAX_TOP_LEVEL]
    return ["/" + c for c in mine_sorted + rest]


class CgroupV2:
    mode = "v2"

    def __init__(self, root: str):
        self.root = root

    def cgroups(self) -> list[str]:
        return _watched([self.root])

    def stats(self, cgroup: str) -> CgroupStats:
        d = self.root + cgroup
        s = CgroupStats()
        text = _read(d + "/cpu.stat")
        if text is not None:
            cpu = parse_flat_keyed(text)
            s.cpu_usage_seconds = cpu.get("usage_usec", 0) / 1e6
            s.cpu_throttled_seconds = cpu.get("throttled_usec", 0) / 1e6
            s.cpu_throttled_periods = cpu.get("nr_throttled", 0)
            s.cpu_periods = cpu.get("nr_periods", 0)
        if (text := _read(d + "/cpu.max")) is not None:
            s.cpu_limit_cores = parse_cpu_max(text)
        if (text := _read(d + "/memory.current")) is not None:
            s.memory_usage_bytes = int(text)
        if (text := _read(d + "/memory.max")) is not None:
            s.memory_limit_bytes = parse_memory_max(text)
        if (text := _read(d + "/memory.events")) is not None:
            events = parse_flat_keyed(text)
            s.memory_limit_hits = events.get("max", 0)
            s.memory_oom_kills = events.get("oom_kill", 0)
        for resource in ("cpu", "memory", "io"):
            if (text := _read(f"{d}/{resource}.pressure")) is not None:
                for kind, seconds in parse_pressure(text).items():
                    s.pressure[resource, kind] = seconds
        return s


class CgroupV1:
    mode = "v1"

    def __init__(self, base: str, mode: str = "v1"):
        self.mode = mode
        self.cpu = os.path.join(base, "cpu")
        self.cpuacct = os.path.join(base, "cpuacct")
        self.memory = os.path.join(base, "memory")

    def cgroups(self) -> list[str]:
        return _watched([r for r in (self.cpu, self.cpuacct, self.memory) if os.path.isdir(r)])

    def stats(self, cgroup: str) -> CgroupStats:
        s = CgroupStats()
        if (text := _read(self.cpuacct + cgroup + "/cpuacct.usage")) is not None:
            s.cpu_usage_seconds = int(text) / 1e9
        if (text := _read(self.cpu + cgroup + "/cpu.stat")) is not None:
            cpu = parse_flat_keyed(text)
            s.cpu_throttled_seconds = cpu.get("throttled_time", 0) / 1e9
            s.cpu_throttled_periods = cpu.get("nr_throttled", 0)
            s.cpu_periods = cpu.get("nr_periods", 0)
        quota, period = (
            _read(self.cpu + cgroup + "/cpu.cfs_quota_us"),
            _read(self.cpu + cgroup + "/cpu.cfs_period_us"),
        )
        if quota is not None and period is not None and int(quota) > 0:
            s.cpu_limit_cores = int(quota) / int(period)
        m = self.memory + cgroup
        if (text := _read(m + "/memory.usage_in_bytes")) is not None:
            s.memory_usage_bytes = int(text)
        if (text := _read(m + "/memory.limit_in_bytes")) is not None:
            limit = int(text)
            s.memory_limit_bytes = 0 if limit >= V1_UNLIMITED else limit
        if (text := _read(m + "/memory.failcnt")) is not None:
            s.memory_limit_hits = int(text)
        if (text := _read(m + "/memory.oom_control")) is not None:  # oom_kill line: Linux 4.13+
            s.memory_oom_kills = parse_flat_keyed(text).get("oom_kill", 0)
        return s


def detect(sysfs: str) -> Hierarchy | None:
    """The cgroup layout under ``<sysfs>/fs/cgroup``: v2 (unified), hybrid (v1 + empty unified) or v1."""
    base = os.path.join(sysfs, "fs", "cgroup")
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        return CgroupV2(base)
    v1_present = any(os.path.isdir(os.path.join(base, c)) for c in ("cpu", "cpuacct", "memory"))
    if not v1_present:
        return None
    hybrid = os.path.exists(os.path.join(base, "unified", "cgroup.controllers"))
    return CgroupV1(base, "hybrid" if hybrid else "v1")


#: CgroupStats field → (metric, help, counter?)
FAMILIES: dict[str, tuple[str, str, bool]] = {
    "cpu_usage_seconds": (
        "obslab_cgroup_cpu_usage_seconds_total",
        "CPU seconds used by the cgroup's tasks.",
        True,
    ),
    "cpu_throttled_seconds": (
        "obslab_cgroup_cpu_throttled_seconds_total",
        "Seconds the cgroup's tasks were throttled by its CPU quota.",
        True,
    ),
    "cpu_throttled_periods": (
        "obslab_cgroup_cpu_throttled_periods_total",
        "Scheduler periods in which the cgroup hit its CPU quota.",
        True,
    ),
    "cpu_periods": (
        "obslab_cgroup_cpu_periods_total",
        "Scheduler periods the cgroup's CPU quota was enforced.",
        True,
    ),
    "cpu_limit_cores": (
        "obslab_cgroup_cpu_limit_cores",
        "CPU quota in cores (quota / period); 0 means none.",
        False,
    ),
    "memory_usage_bytes": (
        "obslab_cgroup_memory_usage_bytes",
        "Memory charged to the cgroup (page cache included).",
        False,
    ),
    "memory_limit_bytes": (
        "obslab_cgroup_memory_limit_bytes",
        "The cgroup's memory limit; 0 means none.",
        False,
    ),
    "memory_limit_hits": (
        "obslab_cgroup_memory_limit_hits_total",
        "Times the cgroup's memory usage hit its limit (v2 memory.events max, v1 memory.failcnt).",
        True,
    ),
    "memory_oom_kills": (
        "obslab_cgroup_memory_oom_kills_total",
        "Processes in the cgroup killed by the OOM killer.",
        True,
    ),
}


#: (resource, kind) pairs of per-cgroup PSI; as system-wide, CPU "full" is not exported.
PSI_KEYS = (("cpu", "some"), ("memory", "some"), ("memory", "full"), ("io", "some"), ("io", "full"))


@register
class CgroupsCollector(HostCollector):
    """Per-cgroup CPU use and throttling, memory use and limit, OOM kills (v1 and v2; top levels + obslab/)."""

    name = "cgroups"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        hierarchy = detect(self.paths.sysfs)
        if hierarchy is None:
            raise NoData("no cgroup hierarchy under " + os.path.join(self.paths.sysfs, "fs", "cgroup"))
        info = GaugeMetricFamily(
            "obslab_cgroup_hierarchy_info",
            "The cgroup layout: v1, v2 or hybrid (v1 controllers with an empty v2 tree).",
            labels=["mode"],
        )
        info.add_metric([hierarchy.mode], 1)
        yield info
        fams = {
            f: (CounterMetricFamily if counter else GaugeMetricFamily)(name, doc, labels=["cgroup"])
            for f, (name, doc, counter) in FAMILIES.items()
        }
        # PSI per cgroup exists in v2 only: exported there, for every watched cgroup (0 if unreadable).
        psi = {
            key: CounterMetricFamily(
                f"obslab_cgroup_pressure_{key[0]}_{'waiting' if key[1] == 'some' else 'stalled'}_seconds_total",
                f"Seconds {'some' if key[1] == 'some' else 'all non-idle'} tasks of the cgroup stalled on {key[0]} (PSI, cgroup v2 only).",
                labels=["cgroup"],
            )
            for key in PSI_KEYS
        }
        for cgroup in hierarchy.cgroups():
            stats = hierarchy.stats(cgroup)
            for f in fields(CgroupStats):
                if f.name != "pressure":
                    fams[f.name].add_metric([cgroup], getattr(stats, f.name))
            if hierarchy.mode == "v2":
                for key, fam in psi.items():
                    fam.add_metric([cgroup], stats.pressure.get(key, 0.0))
        yield from fams.values()
        if hierarchy.mode == "v2":
            yield from psi.values()
