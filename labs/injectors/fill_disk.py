"""fill_disk: a debug dump filling the service's log volume until ENOSPC, the file held open.

The volume is the demo's own 128 MiB loop-mounted ext4, so the host's filesystems never fill. Deleting the file
while the writer holds it open frees nothing (``lsof +L1``): the space comes back when the process ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from obslab.labs.injectors import FaultContext, Injector, Param, culprit_cgroup, register


@register
class FillDisk(Injector):
    name = "fill_disk"
    summary = "fill the service's log volume with one big file, kept open"
    params: ClassVar[dict[str, Param]] = {
        "process_name": Param(str, "auditdump"),
        "file_name": Param(str, "audit-debug.dump"),
        "cap_mib": Param(
            int, 256, minimum=1, maximum=512, help="stop writing after this much (the volume is 128 MiB)"
        ),
    }

    def apply(self, ctx: FaultContext, params: dict[str, Any]) -> None:
        if "/" in params["file_name"]:
            raise ValueError("file_name must be a plain name")
        rel = culprit_cgroup(ctx, shared=False)
        ctx.make_cgroup(rel)
        target = Path(ctx.demo.log_dir) / params["file_name"]
        ctx.ledger.record("file", path=str(target))
        ctx.spawn_culprit(
            params["process_name"],
            "fill",
            rel,
            ["--all-sessions", "--verbose"],
            path=str(target),
            cap_mib=params["cap_mib"],
        )
