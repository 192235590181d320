"""netstat: TCP/UDP protocol counters (retransmits, listen overflows and drops...) from /proc/net/snmp
and /proc/net/netstat."""

from __future__ import annotations

from collections.abc import Iterator

from obslab.exporters.host._common import HostCollector, read_text
from obslab.exporters.registry import register
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


def parse_snmp(text: str) -> dict[str, dict[str, int]]:
    """The paired header/value lines of /proc/net/snmp or /proc/net/netstat → {"Tcp": {"RetransSegs": n}}."""
    out: dict[str, dict[str, int]] = {}
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        proto, _, names = header.partition(":")
        proto2, _, nums = values.partition(":")
        if proto != proto2:
            raise ValueError(f"unpaired lines for {proto!r} / {proto2!r}")
        out.setdefault(proto, {}).update(zip(names.split(), (int(v) for v in nums.split()), strict=False))
    return out


#: (protocol, field, metric, help); counters unless listed in GAUGES.
COUNTERS = (
    ("Tcp", "RetransSegs", "obslab_tcp_retransmitted_segments_total", "TCP segments retransmitted."),
    ("Tcp", "ActiveOpens", "obslab_tcp_active_opens_total", "TCP connections opened by this host (connect)."),
    ("Tcp", "PassiveOpens", "obslab_tcp_passive_opens_total", "TCP connections accepted by this host."),
    ("Tcp", "AttemptFails", "obslab_tcp_attempt_fails_total", "TCP connection attempts that failed."),
    ("Tcp", "EstabResets", "obslab_tcp_established_resets_total", "Established TCP connections reset."),
    ("Tcp", "InSegs", "obslab_tcp_in_segments_total", "TCP segments received."),
    ("Tcp", "OutSegs", "obslab_tcp_out_segments_total", "TCP segments sent."),
    ("Tcp", "InErrs", "obslab_tcp_in_errors_total", "TCP segments received with errors."),
    ("Tcp", "OutRsts", "obslab_tcp_out_resets_total", "TCP segments sent with the RST flag."),
    (
        "TcpExt",
        "ListenOverflows",
        "obslab_tcp_listen_overflows_total",
        "Connections dropped because a listen (accept) queue was full.",
    ),
    (
        "TcpExt",
        "ListenDrops",
        "obslab_tcp_listen_drops_total",
        "SYNs to listening sockets dropped (overflows included).",
    ),
    ("TcpExt", "TCPSynRetrans", "obslab_tcp_syn_retransmits_total", "SYN and SYN-ACK retransmits."),
    ("TcpExt", "TCPTimeouts", "obslab_tcp_timeouts_total", "TCP retransmission timeouts (RTO fired)."),
    (
        "TcpExt",
        "TCPLostRetransmit",
        "obslab_tcp_lost_retransmits_total",
        "Retransmitted TCP segments that were lost again.",
    ),
    (
        "TcpExt",
        "TCPAbortOnTimeout",
        "obslab_tcp_abort_on_timeout_total",
        "TCP connections aborted after too many retransmits.",
    ),
    (
        "TcpExt",
        "TCPBacklogDrop",
        "obslab_tcp_backlog_drops_total",
        "TCP packets dropped because the socket backlog was full.",
    ),
    (
        "TcpExt",
        "SyncookiesSent",
        "obslab_tcp_syncookies_sent_total",
        "SYN cookies sent (SYN queue overflowed).",
    ),
    ("Udp", "InDatagrams", "obslab_udp_in_datagrams_total", "UDP datagrams received."),
    ("Udp", "OutDatagrams", "obslab_udp_out_datagrams_total", "UDP datagrams sent."),
    ("Udp", "InErrors", "obslab_udp_in_errors_total", "UDP datagrams received with errors."),
    ("Udp", "NoPorts", "obslab_udp_no_ports_total", "UDP datagrams to a port nobody listens on."),
    (
        "Udp",
        "RcvbufErrors",
        "obslab_udp_receive_buffer_errors_total",
        "UDP datagrams dropped: receive buffer full.",
    ),
    (
        "Udp",
        "SndbufErrors",
        "obslab_udp_send_buffer_errors_total",
        "UDP datagrams dropped: send buffer full.",
    ),
    ("Ip", "InDiscards", "obslab_ip_in_discards_total", "IPv4 packets discarded on input (no buffer...)."),
    ("Ip", "OutDiscards", "obslab_ip_out_discards_total", "IPv4 packets discarded on output."),
)
GAUGES = (
    ("Tcp", "CurrEstab", "obslab_tcp_current_established", "TCP connections established or closing now."),
)


@register
class NetstatCollector(HostCollector):
    """Protocol counters: TCP retransmits, listen overflows and drops, timeouts, resets, UDP errors."""

    name = "netstat"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        stats = parse_snmp(self.read_proc("net", "snmp"))
        try:
            for proto, fields in parse_snmp(read_text(self.proc("net", "netstat"))).items():
                stats.setdefault(proto, {}).update(fields)
        except FileNotFoundError:  # TcpExt lives here; very old kernels only: keep the snmp part
            pass
        for proto, field, metric, doc in COUNTERS:
            if field in stats.get(proto, {}):
                yield CounterMetricFamily(metric, doc, value=stats[proto][field])
        for proto, field, metric, doc in GAUGES:
            if field in stats.get(proto, {}):
                yield GaugeMetricFamily(metric, doc, value=stats[proto][field])
