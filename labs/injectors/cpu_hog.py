"""cpu_hog: a runaway batch job (``thumbnailer`` by default) burning every core beside the service."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from obslab.labs.injectors import FaultContext, Injector, Param, culprit_cgroup, register


@register
class CpuHog(Injector):
    name = "cpu_hog"
    summary = "N busy processes in their own cgroup, competing with the service for the CPUs"
    params: ClassVar[dict[str, Param]] = {
        "process_name": Param(str, "thumbnailer", help="argv[0] and comm of the culprit"),
        "workers_per_cpu": Param(float, 1.5, minimum=0.5, maximum=4.0),
    }

    def apply(self, ctx: FaultContext, params: dict[str, Any]) -> None:
        workers = max(1, round((os.cpu_count() or 1) * params["workers_per_cpu"]))
        rel = culprit_cgroup(ctx, shared=False)
        cg = ctx.make_cgroup(rel)
        # A cgroup competes for CPU as one entity with one task's weight; give it the weight of its workers so
        # it hurts the service as N runaway processes would (the cgroup is ours and goes with the revert).
        cg.write(*cg.cpu_weight_knob(workers))
        ctx.spawn_culprit(
            params["process_name"],
            "spin",
            rel,
            ["--queue", "/var/spool/thumbs", "--jobs", str(workers)],
            workers=workers,
        )
