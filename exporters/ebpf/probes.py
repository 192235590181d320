"""All built-in probes (importing this module registers them) and the tracepoints each needs.

``PROBE_TRACEPOINTS`` is read by ``obslab doctor`` to report, per probe, whether the kernel has its
tracepoints; importing this module does not import bcc.
"""

from __future__ import annotations

from obslab.exporters.ebpf import (  # noqa: F401  (imported for their @register side effect)
    blockio,
    execs,
    oom,
    reclaim,
    runqueue,
    skb_drops,
    softirq,
    syscalls,
    tcp_connect,
    tcp_retransmit,
)
from obslab.exporters.ebpf.probe import ProbeInfo, registered

PROBES: dict[str, ProbeInfo] = registered()

#: probe name → ["category:event", ...] (the contract with obslab.doctor)
PROBE_TRACEPOINTS: dict[str, list[str]] = {name: list(info.tracepoints) for name, info in PROBES.items()}
