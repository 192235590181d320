"""What a probe is: its kernel C, the tracepoints it attaches to, and the maps it exports.

A probe is one module holding a class decorated with ``@register`` (the ebpf_exporter shape): the C snippet,
``handlers`` (tracepoint → C function), and the maps it exports, where the metric name *is* the map name and
each label says how it is decoded from the map key. The loader compiles all enabled probes into one BPF
program; ``collect()`` turns the maps into prometheus_client families on every scrape.

Probes read only tracepoint arguments (``args->field``): the tracepoint record layout comes from the running
kernel's tracefs ``format`` file (bcc generates the struct from it), whereas kernel structs come from the
installed headers, which may not match the running kernel (here: 6.12 headers on a 6.18 kernel), and a
mismatched struct read returns garbage silently.

Histograms are log2 slots in the kernel: slot ``k`` holds values ``v`` with ``2**(k-1) <= v < 2**k``
(bcc's ``bpf_log2l``; slot 0 holds 0). Index ``SUM_SLOT`` holds the exact sum of the raw values, so ``_sum`` is
exact while the buckets are log2-coarse.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

log = logging.getLogger("obslab.exporters.ebpf")

#: Number of log2 slots (0..63) and the index that holds the sum of the raw values.
SLOTS = 64
SUM_SLOT = 64

#: C shared by every probe; compiled once at the top of the combined program.
PRELUDE = r"""
#define OBSLAB_SUM_SLOT 64
/* log2 slot of v, clamped to 63: bpf_log2l(v) = floor(log2(v)) + 1, 0 for v == 0. */
static __always_inline u32 obslab_slot(u64 v)
{
    u32 s = bpf_log2l(v);
    return s > 63 ? 63 : s;
}
"""


# ---------------------------------------------------------------------------------------------------------
# Declarations: what a map exports
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """One label of a metric: its name, the key field it comes from (None: the array index), its decoder.

    ``decode`` turns the raw field into the label value; returning None drops the sample (e.g. an index that
    is not a real syscall). Several raw keys may decode to the same value (``other``): their values add up.
    """

    name: str
    field: str | None
    decode: Callable[[Any], str | None]


@dataclass(frozen=True)
class Counter:
    """A map of counters: an array (index → count) or a hash (key struct → count). Metric name = map name."""

    map: str
    help: str
    labels: tuple[Label, ...] = ()
    scale: float = 1.0  # raw value → base unit (ns → s: 1e-9)


@dataclass(frozen=True)
class Histogram:
    """A log2 histogram map: a per-CPU array indexed by slot (no labels) or a hash keyed by labels + ``slot``.

    Buckets are emitted for slots ``min_slot..max_slot`` (``le`` = ``2**k * unit`` seconds), a fixed set on
    every scrape so ``histogram_quantile`` works; smaller slots fold into the first bucket, larger ones are
    only in ``+Inf``.
    """

    map: str
    help: str
    labels: tuple[Label, ...] = ()
    unit: float = 1e-9
    min_slot: int = 10  # 2**10 ns ≈ 1 µs
    max_slot: int = 34  # 2**34 ns ≈ 17 s


# ---------------------------------------------------------------------------------------------------------
# Pure functions (unit-tested): histogram rebuild, key aggregation
# ---------------------------------------------------------------------------------------------------------


def rebuild_histogram(
    slots: Mapping[int, int], raw_sum: float, unit: float, min_slot: int, max_slot: int
) -> tuple[list[tuple[str, float]], float]:
    """Log2 slot counts → cumulative Prometheus buckets ``[(le, count), ..., ("+Inf", total)]`` and ``_sum``.

    Slot ``k`` holds raw values below ``2**k``, so it is counted in every bucket with ``le >= 2**k * unit``.
    """
    if min_slot > max_slot:
        raise ValueError(f"min_slot {min_slot} > max_slot {max_slot}")
    buckets: list[tuple[str, float]] = []
    cumulative = sum(c for s, c in slots.items() if s <= min_slot)
    for k in range(min_slot, max_slot + 1):
        if k > min_slot:
            cumulative += slots.get(k, 0)
        buckets.append((floatToGoString((2**k) * unit), float(cumulative)))
    total = float(sum(slots.values()))
    buckets.append(("+Inf", total))
    return buckets, raw_sum * unit


def percpu_total(value: Any) -> int:
    """A map value as one integer: per-CPU values (a ctypes array or list) are summed."""
    if isinstance(value, int):
        return value
    if hasattr(value, "value"):
        return int(value.value)
    return int(sum(int(v) for v in value))


def table(bpf: Any, name: str) -> Any:
    """A map of a compiled program by name (bcc wants bytes; str works but warns on every access)."""
    return bpf[name.encode()]


def key_field(key: Any, name: str | None) -> Any:
    """The raw label source from a map key: a struct field, or the integer key of an array."""
    if name is None:
        return int(key.value) if hasattr(key, "value") else int(key)
    return getattr(key, name)


def aggregate_counter(
    rows: Iterable[tuple[Any, int]], labels: tuple[Label, ...]
) -> dict[tuple[str, ...], int]:
    """(key, count) rows → {label values: count}, dropping zero counts and keys a decoder rejects."""
    out: dict[tuple[str, ...], int] = defaultdict(int)
    for key, count in rows:
        if not count:
            continue
        values = tuple(lbl.decode(key_field(key, lbl.field)) for lbl in labels)
        if any(v is None for v in values):
            continue
        out[values] += count  # type: ignore[index]
    return dict(out)


def aggregate_histogram(
    rows: Iterable[tuple[Any, int]], labels: tuple[Label, ...]
) -> dict[tuple[str, ...], tuple[dict[int, int], int]]:
    """(key, value) rows of a histogram map → {label values: (slot counts, raw sum)}.

    For an unlabelled histogram the key is the slot index; for a labelled one, the key struct's ``slot``.
    """
    out: dict[tuple[str, ...], tuple[dict[int, int], list[int]]] = {}
    for key, value in rows:
        slot = key_field(key, None) if not labels else int(key.slot)
        values = tuple(lbl.decode(key_field(key, lbl.field)) for lbl in labels)
        if any(v is None for v in values):
            continue
        slots, raw_sum = out.setdefault(values, ({}, [0]))  # type: ignore[arg-type]
        if slot == SUM_SLOT:
            raw_sum[0] += value
        elif value:
            slots[slot] = slots.get(slot, 0) + value
    return {k: (s, r[0]) for k, (s, r) in out.items() if s or r[0]}


# ---------------------------------------------------------------------------------------------------------
# The probe base class and its registry
# ---------------------------------------------------------------------------------------------------------


class Probe:
    """Base class: subclasses set the ClassVars and usually nothing else; override ``collect`` to add more."""

    name: ClassVar[str]
    #: tracepoint ("category:event") → name of the C function handling it
    handlers: ClassVar[dict[str, str]]
    #: optional cheaper raw-tracepoint variants (tracepoint → C function reading only ``ctx->args[i]``, the
    #: tracepoint's own TP_PROTO arguments); tried first, the classic handler is the fallback
    raw_handlers: ClassVar[dict[str, str]] = {}
    source: ClassVar[str]
    exports: ClassVar[tuple[Counter | Histogram, ...]]
    default_enabled: ClassVar[bool] = True
    #: a per-CPU array[1] counting events the probe lost (a full map): obslab_ebpf_probe_errors_total
    errors_map: ClassVar[str | None] = None

    def setup(self) -> None:
        """Load user-space tables (syscall names, device names) before the first scrape; may raise OSError."""

    @property
    def tracepoints(self) -> list[str]:
        return list(self.handlers)

    def collect(self, bpf: Any) -> Iterator[Metric]:
        for spec in self.exports:
            rows = [(k, percpu_total(v)) for k, v in table(bpf, spec.map).items()]
            if isinstance(spec, Histogram):
                yield self._histogram(spec, rows)
            else:
                yield self._counter(spec, rows)

    @staticmethod
    def _counter(spec: Counter, rows: list[tuple[Any, int]]) -> Metric:
        family = CounterMetricFamily(spec.map, spec.help, labels=[lbl.name for lbl in spec.labels])
        for values, count in sorted(aggregate_counter(rows, spec.labels).items()):
            family.add_metric(list(values), count * spec.scale)
        return family

    @staticmethod
    def _histogram(spec: Histogram, rows: list[tuple[Any, int]]) -> Metric:
        family = HistogramMetricFamily(spec.map, spec.help, labels=[lbl.name for lbl in spec.labels])
        data = aggregate_histogram(rows, spec.labels)
        if not spec.labels and not data:
            data = {(): ({}, 0)}  # an unlabelled histogram is always present, zero until the first event
        for values, (slots, raw_sum) in sorted(data.items()):
            buckets, total = rebuild_histogram(slots, raw_sum, spec.unit, spec.min_slot, spec.max_slot)
            family.add_metric(list(values), buckets, total)
        return family


@dataclass
class ProbeInfo:
    name: str
    cls: type[Probe]
    default_enabled: bool
    help: str
    tracepoints: list[str] = field(default_factory=list)


_REGISTRY: dict[str, ProbeInfo] = {}

P = TypeVar("P", bound=type[Probe])


def register(cls: P) -> P:
    """Class decorator: add a probe to the registry (name, tracepoints and help from its docstring)."""
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name].cls is not cls:
        raise ValueError(f"probe {name!r} registered twice")
    doc = (cls.__doc__ or "").strip().splitlines()
    _REGISTRY[name] = ProbeInfo(
        name=name,
        cls=cls,
        default_enabled=cls.default_enabled,
        help=doc[0] if doc else name,
        tracepoints=list(cls.handlers),
    )
    return cls


def registered() -> dict[str, ProbeInfo]:
    return dict(sorted(_REGISTRY.items()))
