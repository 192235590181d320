"""cpu_quota: a CFS bandwidth quota on the service's cgroup (v1 cpu.cfs_quota_us / v2 cpu.max).

The CPUs stay mostly idle, yet the service is runnable-but-throttled for most of each period: latency climbs
and ``nr_throttled`` / ``throttled_usec`` in cpu.stat count it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from obslab.labs.injectors import FaultContext, Injector, Param, register


@register
class CpuQuota(Injector):
    name = "cpu_quota"
    summary = "cap the service's cgroup at a fraction of one CPU"
    params: ClassVar[dict[str, Param]] = {
        "cpus": Param(float, 0.05, minimum=0.01, maximum=1.0, help="quota as a fraction of one CPU"),
        "period_us": Param(int, 100_000, minimum=10_000, maximum=1_000_000),
    }

    def apply(self, ctx: FaultContext, params: dict[str, Any]) -> None:
        cg = ctx.cgroup(ctx.demo.app_cgroup)
        quota = max(1000, int(params["cpus"] * params["period_us"]))
        if cg.mode == "v1":
            ctx.set_knob(cg, "cpu.cfs_period_us", str(params["period_us"]))
        knob, value = cg.cpu_quota_knob(quota, params["period_us"])
        ctx.set_knob(cg, knob, value)
