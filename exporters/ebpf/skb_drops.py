"""Packets dropped by the kernel, by drop reason (skb:kfree_skb, reason field since 5.17)."""

from __future__ import annotations

from typing import ClassVar

from obslab.exporters.ebpf.kernel import parse_print_symbolic, tracepoint_format
from obslab.exporters.ebpf.probe import Counter, Label, Probe, register

NR_REASONS = 512
#: Filled from the running kernel's format (enum skb_drop_reason changes between releases).
REASONS: dict[int, str] = {}


def decode_reason(reason: int) -> str:
    """Reason number → lower-case name (``NETFILTER_DROP`` → ``netfilter_drop``), unknown → ``other``."""
    return REASONS.get(reason, "other")


@register
class SkbDrops(Probe):
    """Packets the kernel dropped (kfree_skb), by drop reason (netfilter, no socket, queue full...)."""

    name = "skb_drops"
    handlers: ClassVar[dict[str, str]] = {"skb:kfree_skb": "obslab_kfree_skb"}
    exports = (
        Counter(
            "obslab_skb_drops_total",
            "Packets dropped by the kernel (kfree_skb), by drop reason.",
            labels=(Label("reason", None, decode_reason),),
        ),
    )
    source = rf"""
/* The format file types the field as enum skb_drop_reason, which bcc's generated struct cannot see:
   declare it (an int-sized enum, as the format's size:4 says) so the generated struct is complete. */
enum skb_drop_reason {{ OBSLAB_SKB_DROP_REASON_MAX = 0x7fffffff }};
BPF_PERCPU_ARRAY(obslab_skb_drops_total, u64, {NR_REASONS});

int obslab_kfree_skb(struct tracepoint__skb__kfree_skb *args)
{{
    /* Subsystem reasons (mac80211, ovs...) carry high bits: they fold into the last slot (other). */
    u32 r = (u32)args->reason;
    u32 idx = r < {NR_REASONS - 1} ? r : {NR_REASONS - 1};
    u64 *v = obslab_skb_drops_total.lookup(&idx);
    if (v) *v += 1;
    return 0;
}}
"""

    def setup(self) -> None:
        names = parse_print_symbolic(tracepoint_format("skb:kfree_skb") or "", "reason")
        REASONS.update({k: v.lower() for k, v in names.items() if k < NR_REASONS - 1})
