"""Time spent in softirqs by vector (irq:softirq_entry/exit): where NET_RX, TIMER, RCU... eat CPU."""

from __future__ import annotations

from typing import ClassVar

from obslab.exporters.ebpf.kernel import parse_print_symbolic, tracepoint_format
from obslab.exporters.ebpf.probe import Counter, Label, Probe, register

NR_VECTORS = 16
#: include/linux/interrupt.h (stable since 2.6); replaced by the running kernel's table in setup().
VECTORS = {
    0: "hi", 1: "timer", 2: "net_tx", 3: "net_rx", 4: "block", 5: "irq_poll", 6: "tasklet", 7: "sched",
    8: "hrtimer", 9: "rcu",
}  # fmt: skip


def decode_vector(vec: int) -> str | None:
    return VECTORS.get(vec, "other")


@register
class Softirq(Probe):
    """CPU time spent running softirq handlers, by vector."""

    name = "softirq"
    handlers: ClassVar[dict[str, str]] = {
        "irq:softirq_entry": "obslab_softirq_entry",
        "irq:softirq_exit": "obslab_softirq_exit",
    }
    exports = (
        Counter(
            "obslab_softirq_seconds_total",
            "CPU time spent in softirq handlers, by vector, in seconds.",
            labels=(Label("vector", None, decode_vector),),
            scale=1e-9,
        ),
    )
    source = rf"""
/* Softirqs do not nest on a CPU, so one per-CPU start time suffices. */
BPF_PERCPU_ARRAY(obslab_softirq_start, u64, 1);
BPF_PERCPU_ARRAY(obslab_softirq_seconds_total, u64, {NR_VECTORS});

int obslab_softirq_entry(struct tracepoint__irq__softirq_entry *args)
{{
    u32 zero = 0;
    u64 *ts = obslab_softirq_start.lookup(&zero);
    if (ts) *ts = bpf_ktime_get_ns();
    return 0;
}}

int obslab_softirq_exit(struct tracepoint__irq__softirq_exit *args)
{{
    u32 zero = 0;
    u64 *ts = obslab_softirq_start.lookup(&zero);
    if (!ts || *ts == 0)
        return 0;
    u64 delta = bpf_ktime_get_ns() - *ts;
    *ts = 0;
    u32 vec = args->vec < {NR_VECTORS} ? args->vec : {NR_VECTORS - 1};
    u64 *v = obslab_softirq_seconds_total.lookup(&vec);
    if (v) *v += delta;
    return 0;
}}
"""

    def setup(self) -> None:
        names = parse_print_symbolic(tracepoint_format("irq:softirq_entry") or "", "vec")
        VECTORS.update({k: v.lower() for k, v in names.items()})
