"""Direct-reclaim stalls: time a task allocating memory spends reclaiming it itself (vmscan tracepoints)."""

from __future__ import annotations

from typing import ClassVar

from obslab.exporters.ebpf.probe import Histogram, Probe, register


@register
class DirectReclaim(Probe):
    """Time tasks stalled in direct memory reclaim (allocation had to free memory first)."""

    name = "reclaim"
    handlers: ClassVar[dict[str, str]] = {
        "vmscan:mm_vmscan_direct_reclaim_begin": "obslab_reclaim_begin",
        "vmscan:mm_vmscan_direct_reclaim_end": "obslab_reclaim_end",
    }
    errors_map = "obslab_reclaim_errors"
    exports = (
        Histogram(
            "obslab_direct_reclaim_stall_seconds",
            "Time tasks stalled in direct memory reclaim, per reclaim, in seconds.",
            min_slot=10,  # 1 µs
            max_slot=34,  # 17 s
        ),
    )
    source = r"""
/* begin and end fire in the same task: key by thread id (a helper, no struct read). */
BPF_HASH(obslab_reclaim_start, u32, u64, 8192);
BPF_PERCPU_ARRAY(obslab_direct_reclaim_stall_seconds, u64, 65);
BPF_PERCPU_ARRAY(obslab_reclaim_errors, u64, 1);

int obslab_reclaim_begin(struct tracepoint__vmscan__mm_vmscan_direct_reclaim_begin *args)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 ts = bpf_ktime_get_ns();
    if (obslab_reclaim_start.update(&tid, &ts) != 0) {
        u32 zero = 0;
        u64 *e = obslab_reclaim_errors.lookup(&zero);
        if (e) *e += 1;
    }
    return 0;
}

int obslab_reclaim_end(struct tracepoint__vmscan__mm_vmscan_direct_reclaim_end *args)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 *tsp = obslab_reclaim_start.lookup(&tid);
    if (!tsp)
        return 0;
    u64 delta = bpf_ktime_get_ns() - *tsp;
    obslab_reclaim_start.delete(&tid);
    u32 slot = obslab_slot(delta);
    u64 *v = obslab_direct_reclaim_stall_seconds.lookup(&slot);
    if (v) *v += 1;
    u32 sum = OBSLAB_SUM_SLOT;
    v = obslab_direct_reclaim_stall_seconds.lookup(&sum);
    if (v) *v += delta;
    return 0;
}
"""
