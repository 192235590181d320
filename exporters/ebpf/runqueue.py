"""Run-queue latency: how long a runnable task waits for a CPU (runqlat, from tracepoints only)."""

from __future__ import annotations

from typing import ClassVar

from obslab.exporters.ebpf.probe import Histogram, Probe, register


@register
class RunQueue(Probe):
    """Time from a task becoming runnable (woken, or preempted) to running on a CPU."""

    name = "runqueue"
    handlers: ClassVar[dict[str, str]] = {
        "sched:sched_wakeup": "obslab_runq_wakeup",
        "sched:sched_wakeup_new": "obslab_runq_wakeup_new",
        "sched:sched_switch": "obslab_runq_switch",
    }
    exports = (
        Histogram(
            "obslab_runqueue_latency_seconds",
            "Time runnable tasks waited on a CPU run queue before running, in seconds.",
            min_slot=10,  # 1 µs
            max_slot=30,  # 1.07 s
        ),
    )
    source = r"""
/* Wake-up times in an ARRAY indexed by pid & 0xffff, not a hash: the two sched tracepoints fire on
   every context switch, and an array slot is a lock-free O(1) store, where a hash update/delete takes a
   bucket lock and the free list (measured: docs/performance.md). The slot remembers its pid, so a pid
   sharing the slot (pid_max > 65536) is never mistaken for another; it only overwrites a pending sample. */
#define OBSLAB_RUNQ_SLOTS 65536
struct obslab_runq_slot { u32 pid; u32 pad; u64 ts; };
BPF_ARRAY(obslab_runq_start, struct obslab_runq_slot, OBSLAB_RUNQ_SLOTS);
BPF_PERCPU_ARRAY(obslab_runqueue_latency_seconds, u64, 65);

static __always_inline int obslab_runq_enqueue(u32 pid)
{
    if (pid == 0)  /* the idle task never waits */
        return 0;
    u32 idx = pid & (OBSLAB_RUNQ_SLOTS - 1);
    struct obslab_runq_slot *s = obslab_runq_start.lookup(&idx);
    if (!s)
        return 0;
    s->pid = pid;
    s->ts = bpf_ktime_get_ns();
    return 0;
}

int obslab_runq_wakeup(struct tracepoint__sched__sched_wakeup *args)
{
    return obslab_runq_enqueue(args->pid);
}

int obslab_runq_wakeup_new(struct tracepoint__sched__sched_wakeup_new *args)
{
    return obslab_runq_enqueue(args->pid);
}

int obslab_runq_switch(struct tracepoint__sched__sched_switch *args)
{
    /* A task switched out while still runnable waits again: prev_state 0 (yield) or only the
       TASK_REPORT_MAX bit (0x100 since 4.14: preempted) set. 0x80 is TASK_REPORT_IDLE, not runnable. */
    if ((args->prev_state & 0xff) == 0)
        obslab_runq_enqueue(args->prev_pid);
    u32 pid = args->next_pid;
    u32 idx = pid & (OBSLAB_RUNQ_SLOTS - 1);
    struct obslab_runq_slot *s = obslab_runq_start.lookup(&idx);
    if (!s || s->pid != pid || s->ts == 0)
        return 0;
    u64 delta = bpf_ktime_get_ns() - s->ts;
    s->ts = 0;
    u32 slot = obslab_slot(delta);
    u64 *v = obslab_runqueue_latency_seconds.lookup(&slot);
    if (v) *v += 1;
    u32 sum = OBSLAB_SUM_SLOT;
    v = obslab_runqueue_latency_seconds.lookup(&sum);
    if (v) *v += delta;
    return 0;
}
"""
