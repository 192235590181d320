"""memory_leak: a leaking worker (``reportgen``) sharing the service's memory limit, OOM-killed again and again.

The service's cgroup gets a limit of its current usage plus ``headroom_mib``; the worker (oom_score_adj 1000, so
the OOM killer picks it and not the service) grows until the memcg OOM killer ends it, and its supervisor
restarts it a second later.
"""

from __future__ import annotations

from typing import Any, ClassVar

from obslab.labs.injectors import FaultContext, Injector, Param, culprit_cgroup, register


@register
class MemoryLeak(Injector):
    name = "memory_leak"
    summary = "a worker leaking into the service's memory limit until the OOM killer ends it"
    params: ClassVar[dict[str, Param]] = {
        "process_name": Param(str, "reportgen"),
        "headroom_mib": Param(int, 96, minimum=32, maximum=512),
        "step_mib": Param(int, 8, minimum=1, maximum=64, help="leaked every 100 ms"),
    }

    def apply(self, ctx: FaultContext, params: dict[str, Any]) -> None:
        app = ctx.cgroup(ctx.demo.app_cgroup)
        limit = app.memory_usage() + (params["headroom_mib"] << 20)
        knob, value = app.memory_limit_knob(limit)
        ctx.set_knob(app, knob, value)
        rel = culprit_cgroup(ctx, shared=True)
        ctx.make_cgroup(rel)
        ctx.spawn_culprit(
            params["process_name"],
            "leak",
            rel,
            ["--nightly", "--format", "pdf"],
            step_mib=params["step_mib"],
            cap_mib=params["headroom_mib"] * 4,
        )
