"""memory_thrash: a cache warmer squeezing the service's memory limit so the cgroup reclaims all the time.

It pins ``anon_mib`` of anonymous memory (no swap: it cannot be reclaimed) and re-reads a data file larger than
what is left, so page cache, the service's included, is reclaimed and refaulted continuously: direct reclaim
and refault stalls show up in PSI memory (``some``), with no OOM kill.
"""

from __future__ import annotations

from typing import Any, ClassVar

from obslab.labs.injectors import FaultContext, Injector, Param, culprit_cgroup, register


@register
class MemoryThrash(Injector):
    name = "memory_thrash"
    summary = "anonymous memory plus a re-read file inside the service's memory limit: constant reclaim"
    params: ClassVar[dict[str, Param]] = {
        "process_name": Param(str, "cachewarmer"),
        "anon_mib": Param(int, 160, minimum=16, maximum=1024),
        "cache_mib": Param(int, 24, minimum=8, maximum=256, help="room left for page cache under the limit"),
        "file_mib": Param(int, 192, minimum=32, maximum=512, help="data file re-read in a loop (bounded)"),
    }

    def apply(self, ctx: FaultContext, params: dict[str, Any]) -> None:
        app = ctx.cgroup(ctx.demo.app_cgroup)
        limit = app.memory_usage() + ((params["anon_mib"] + params["cache_mib"]) << 20)
        knob, value = app.memory_limit_knob(limit)
        ctx.set_knob(app, knob, value)
        rel = culprit_cgroup(ctx, shared=True)
        ctx.make_cgroup(rel)
        data = ctx.files_dir / "warm-cache.dat"
        ctx.files_dir.mkdir(parents=True, exist_ok=True)
        ctx.ledger.record("file", path=str(data))
        ctx.spawn_culprit(
            params["process_name"],
            "thrash",
            rel,
            ["--prefetch", "catalog"],
            anon_mib=params["anon_mib"],
            file_mib=params["file_mib"],
            path=str(data),
        )
