"""TCP retransmits by address family and TCP state (tcpretrans, counted, no addresses)."""

from __future__ import annotations

from typing import ClassVar

from obslab.exporters.ebpf.kernel import parse_print_symbolic, tracepoint_format
from obslab.exporters.ebpf.probe import Counter, Label, Probe, register

FAMILIES = {2: "ipv4", 10: "ipv6"}
#: include/net/tcp_states.h; the running kernel's names replace these in setup() when its format has them.
TCP_STATES = {
    1: "established", 2: "syn_sent", 3: "syn_recv", 4: "fin_wait1", 5: "fin_wait2", 6: "time_wait",
    7: "close", 8: "close_wait", 9: "last_ack", 10: "listen", 11: "closing", 12: "new_syn_recv",
}  # fmt: skip


def decode_family(family: int) -> str:
    return FAMILIES.get(family, "other")


def decode_state(state: int) -> str:
    return TCP_STATES.get(state, "other")


def state_names(format_text: str, field: str) -> dict[int, str]:
    """TCP state names from a tracepoint format (``TCP_SYN_SENT`` → ``syn_sent``)."""
    return {k: v.lower().removeprefix("tcp_") for k, v in parse_print_symbolic(format_text, field).items()}


@register
class TcpRetransmit(Probe):
    """TCP segments retransmitted, by address family and the socket's TCP state."""

    name = "tcp_retransmit"
    handlers: ClassVar[dict[str, str]] = {"tcp:tcp_retransmit_skb": "obslab_tcp_retrans"}
    exports = (
        Counter(
            "obslab_tcp_retransmits_total",
            "TCP segments retransmitted, by address family and TCP state of the socket.",
            labels=(
                Label("family", "family", decode_family),
                Label("state", "state", decode_state),
            ),
        ),
    )
    source = r"""
/* Key: family << 8 | state, both small tracepoint arguments: no struct, no padding, bounded labels. */
struct obslab_tcp_retrans_key { u32 family; u32 state; };
BPF_HASH(obslab_tcp_retransmits_total, struct obslab_tcp_retrans_key, u64, 256);

int obslab_tcp_retrans(struct tracepoint__tcp__tcp_retransmit_skb *args)
{
    struct obslab_tcp_retrans_key key;
    __builtin_memset(&key, 0, sizeof(key));
    key.family = args->family;
    key.state = args->state;
    obslab_tcp_retransmits_total.atomic_increment(key);
    return 0;
}
"""

    def setup(self) -> None:
        text = tracepoint_format("sock:inet_sock_set_state") or ""
        TCP_STATES.update(state_names(text, "oldstate"))
