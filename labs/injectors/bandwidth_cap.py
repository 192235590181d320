"""bandwidth_cap: a token-bucket (tbf) qdisc on the lab veth's root side: the link to the users is saturated.

The service's answers leave through ``obslab-<iid>h``; tbf lets ``rate`` through and queues the rest up to
``latency``, then drops: throughput flattens at the cap, queueing delay and drops (``tc -s qdisc``) appear.
"""

from __future__ import annotations

from typing import Any, ClassVar

from obslab.labs import sandbox
from obslab.labs.injectors import FaultContext, Injector, Param, register


@register
class BandwidthCap(Injector):
    name = "bandwidth_cap"
    summary = "tbf rate limit on the lab veth (egress towards the load generator)"
    params: ClassVar[dict[str, Param]] = {
        "rate_kbit": Param(int, 1000, minimum=64, maximum=100_000),
        "latency_ms": Param(int, 300, minimum=10, maximum=2000),
    }

    def apply(self, ctx: FaultContext, params: dict[str, Any]) -> None:
        dev = ctx.demo.veth_host
        if not dev.startswith(sandbox.PREFIX + "-"):
            raise ValueError(f"refusing to shape {dev!r}: not an obslab veth")
        ctx.ledger.record("qdisc", dev=dev)
        burst = max(4, params["rate_kbit"] // 64)  # kbit; >= one MTU at low rates
        sandbox.run(
            [
                "tc",
                "qdisc",
                "replace",
                "dev",
                dev,
                "root",
                "tbf",
                "rate",
                f"{params['rate_kbit']}kbit",
                "burst",
                f"{burst}kbit",
                "latency",
                f"{params['latency_ms']}ms",
            ]
        )
