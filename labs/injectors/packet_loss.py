"""packet_loss: nftables ``numgen random`` drops on the lab path, inside the lab's network namespace.

A table ``obslab_<fault>`` in the demo's netns drops a share of the packets arriving from the service; the
service's TCP retransmits (root namespace: ``nstat TcpRetransSegs``, ``ss -ti`` retrans) and each loss of a
SYN or a tail segment costs a retransmission timeout (>= 200 ms): latency and client timeouts climb.
"""

from __future__ import annotations

from typing import Any, ClassVar

from obslab.labs import sandbox
from obslab.labs.injectors import FaultContext, Injector, Param, register


@register
class PacketLoss(Injector):
    name = "packet_loss"
    summary = "drop a percentage of the lab path's packets with nftables numgen random"
    params: ClassVar[dict[str, Param]] = {"percent": Param(int, 20, minimum=1, maximum=60)}

    def apply(self, ctx: FaultContext, params: dict[str, Any]) -> None:
        table = f"{sandbox.PREFIX}_{ctx.fault.replace('-', '_')}"
        ns = ctx.demo.netns
        ctx.ledger.record("nft_table", family="inet", name=table, netns=ns)
        rules = (
            f"table inet {table} {{\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f'    iifname "{ctx.demo.veth_ns}" numgen random mod 100 < {params["percent"]} counter drop\n'
            "  }\n"
            "}\n"
        )
        import subprocess

        subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-f", "-"],
            input=rules,
            text=True,
            check=True,
            capture_output=True,
        )
