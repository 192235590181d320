"""netdev: bytes, packets, errors and drops per network interface, from /proc/net/dev."""

from __future__ import annotations

from collections.abc import Iterator

from obslab.exporters.host._common import HostCollector
from obslab.exporters.registry import register
from prometheus_client.core import CounterMetricFamily, Metric

#: /proc/net/dev columns per direction; the first four are exported.
RECEIVE = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
TRANSMIT = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")
EXPORTED = ("bytes", "packets", "errs", "drop")
#: Interfaces reported at most (a lab may create veths; labels stay bounded). The rest are dropped, logged.
MAX_DEVICES = 64

HELP = {
    "bytes": "Bytes {}.",
    "packets": "Packets {}.",
    "errs": "Packets with errors {}.",
    "drop": "Packets dropped {} (e.g. full queues, no buffer).",
}


def parse_netdev(text: str) -> dict[str, dict[str, dict[str, int]]]:
    """→ {device: {"receive": {...}, "transmit": {...}}} for every interface line."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for line in text.splitlines()[2:]:
        dev, sep, rest = line.partition(":")
        if not sep:
            continue
        values = [int(v) for v in rest.split()]
        out[dev.strip()] = {
            "receive": dict(zip(RECEIVE, values[:8], strict=False)),
            "transmit": dict(zip(TRANSMIT, values[8:16], strict=False)),
        }
    return out


@register
class NetdevCollector(HostCollector):
    """Network interface counters: bytes, packets, errors and drops, received and transmitted."""

    name = "netdev"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        devices = parse_netdev(self.read_proc("net", "dev"))
        fams = {}
        for direction, verb in (("receive", "received"), ("transmit", "transmitted")):
            for field in EXPORTED:
                fams[direction, field] = CounterMetricFamily(
                    f"obslab_network_{direction}_{field}_total", HELP[field].format(verb), labels=["device"]
                )
        for dev in sorted(devices)[:MAX_DEVICES]:
            for direction in ("receive", "transmit"):
                values = devices[dev][direction]
                for field in EXPORTED:
                    fams[direction, field].add_metric([dev], values.get(field, 0))
        yield from fams.values()
