"""fsync_storm: a backup job rewriting files on the service's log volume with an fsync after every chunk.

The service fsyncs each order line; on ext4 each fsync waits for the journal commit that now carries the storm's
megabytes, so the service's writes queue behind it (iostat -x: high aqu-sz and w_await on the loop device).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from obslab.labs.injectors import FaultContext, Injector, Param, culprit_cgroup, register


@register
class FsyncStorm(Injector):
    name = "fsync_storm"
    summary = "writers doing write+fsync in a loop on the service's log volume"
    params: ClassVar[dict[str, Param]] = {
        "process_name": Param(str, "backupd"),
        "threads": Param(int, 4, minimum=1, maximum=8),
        "chunk_kib": Param(int, 1024, minimum=4, maximum=8192),
        "file_mib": Param(int, 8, minimum=1, maximum=16, help="per writer; the files are rewritten in place"),
    }

    def apply(self, ctx: FaultContext, params: dict[str, Any]) -> None:
        rel = culprit_cgroup(ctx, shared=False)
        ctx.make_cgroup(rel)
        base = Path(ctx.demo.log_dir) / ".backup-staging"
        for i in range(params["threads"]):
            ctx.ledger.record("file", path=f"{base}.{i}")
        ctx.spawn_culprit(
            params["process_name"],
            "fsync",
            rel,
            ["--incremental", "--target", "/srv/backup"],
            threads=params["threads"],
            chunk_kib=params["chunk_kib"],
            file_mib=params["file_mib"],
            path=str(base),
        )
