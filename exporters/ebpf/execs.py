"""Process executions (sched:sched_process_exec): short-lived process storms /proc sampling misses."""

from __future__ import annotations

from typing import ClassVar

from obslab.exporters.ebpf.probe import Counter, Probe, register


@register
class Execs(Probe):
    """Successful execve() calls: new programs started, however short-lived."""

    name = "execs"
    handlers: ClassVar[dict[str, str]] = {"sched:sched_process_exec": "obslab_exec"}
    exports = (Counter("obslab_process_execs_total", "Programs executed (successful execve calls)."),)
    source = r"""
BPF_PERCPU_ARRAY(obslab_process_execs_total, u64, 1);

int obslab_exec(struct tracepoint__sched__sched_process_exec *args)
{
    u32 zero = 0;
    u64 *v = obslab_process_execs_total.lookup(&zero);
    if (v) *v += 1;
    return 0;
}
"""
