"""OOM-killer victims by command name (oom:mark_victim)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from obslab.exporters.ebpf.probe import Probe, percpu_total, register, table
from prometheus_client.core import CounterMetricFamily, Metric

#: Distinct comm label values kept; later new names are counted as "other" (comm is user-chosen text).
MAX_COMMS = 50


def decode_comm(raw: bytes) -> str:
    """A NUL-padded kernel comm → text (invalid UTF-8 replaced; never empty)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace") or "?"


class CommCap:
    """Keeps the comm label bounded: the first ``limit`` distinct names, then ``other``."""

    def __init__(self, limit: int = MAX_COMMS) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, comm: str) -> str:
        if comm in self.seen:
            return comm
        if len(self.seen) < self.limit:
            self.seen.add(comm)
            return comm
        return "other"


@register
class Oom(Probe):
    """Processes chosen and killed by the OOM killer (global or cgroup), by command name."""

    name = "oom"
    handlers: ClassVar[dict[str, str]] = {"oom:mark_victim": "obslab_oom_victim"}
    exports = ()
    source = r"""
struct obslab_oom_key { char comm[16]; };
BPF_HASH(obslab_oom_victims_total, struct obslab_oom_key, u64, 1024);

int obslab_oom_victim(struct tracepoint__oom__mark_victim *args)
{
    struct obslab_oom_key key;
    __builtin_memset(&key, 0, sizeof(key));
    /* comm is a __data_loc string in the record (kernel >= 6.2): read it from the record itself. */
    TP_DATA_LOC_READ_STR(key.comm, comm, sizeof(key.comm));
    obslab_oom_victims_total.atomic_increment(key);
    return 0;
}
"""

    def __init__(self) -> None:
        self.cap = CommCap()

    def collect(self, bpf: Any) -> Iterator[Metric]:
        # Declared even before the first OOM: an absent series and "no OOM yet" must look different.
        family = CounterMetricFamily(
            "obslab_oom_victims_total",
            "Processes killed by the OOM killer, by command name.",
            labels=["comm"],
        )
        counts: dict[str, int] = {}
        for key, value in table(bpf, "obslab_oom_victims_total").items():
            comm = self.cap(decode_comm(bytes(key.comm)))
            counts[comm] = counts.get(comm, 0) + percpu_total(value)
        for comm, n in sorted(counts.items()):
            family.add_metric([comm], n)
        yield family
