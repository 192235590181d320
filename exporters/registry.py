"""The collector registry: how a collector is declared, enabled, run and isolated.

A collector is a class with a ``name``, a ``default_enabled`` flag and one method, ``collect()``, that
yields prometheus_client metric families built fresh on every scrape (the client_python contract).
Collectors register themselves with ``@register``; third-party packages add theirs through the
``obslab.collectors`` entry-point group. The CLI's ``--collector.NAME`` / ``--no-collector.NAME`` flags are
generated from this registry.

Every scrape runs each enabled collector under ``Scrape``: a collector that raises never fails the scrape;
it is reported by ``obslab_scrape_collector_success{collector}`` = 0 and logged, and the others are served.
A collector that finds its source absent on this kernel (no /proc/pressure, say) raises ``NoData``: a
quiet, expected outcome, reported as success 1 with ``obslab_scrape_collector_no_data{collector}`` = 1.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as _PromCollector

log = logging.getLogger("obslab.exporters")

ENTRY_POINT_GROUP = "obslab.collectors"


class NoData(Exception):  # mirrors node_exporter's ErrNoData
    """The collector's source does not exist on this machine (a kernel feature, a file): not an error."""


@dataclass
class Paths:
    """Where collectors read from; relocatable for tests (a fixture tree) and containers (/host/proc)."""

    procfs: str = "/proc"
    sysfs: str = "/sys"
    rootfs: str = "/"


class Collector(Protocol):
    name: ClassVar[str]
    default_enabled: ClassVar[bool]

    def collect(self) -> Iterable[Metric]: ...


C = TypeVar("C", bound=type)


@dataclass
class CollectorInfo:
    name: str
    factory: Callable[[Paths], Any]
    default_enabled: bool
    help: str
    source: str = "obslab"


_REGISTRY: dict[str, CollectorInfo] = {}

_scrape_local = threading.local()


def scrape_cache() -> dict[str, Any]:
    """A dict shared by the collectors of the current scrape, empty at the start of each scrape.

    Lets two collectors share one expensive read (the processes and process collectors share one /proc
    scan) without either depending on the other being enabled. Outside a scrape it is a fresh dict.
    """
    cache = getattr(_scrape_local, "cache", None)
    return cache if cache is not None else {}


def register(cls: C) -> C:
    """Class decorator: ``@register`` on a class with ``name``, ``default_enabled`` and a docstring."""
    name = cls.name  # type: ignore[attr-defined]
    if name in _REGISTRY and _REGISTRY[name].factory is not cls:
        raise ValueError(f"collector {name!r} registered twice")
    doc = (cls.__doc__ or "").strip().splitlines()
    _REGISTRY[name] = CollectorInfo(
        name=name,
        factory=cls,
        default_enabled=bool(getattr(cls, "default_enabled", True)),
        help=doc[0] if doc else name,
    )
    return cls


def load_plugins() -> list[str]:
    """Import collectors declared by other packages in the ``obslab.collectors`` entry-point group."""
    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception:  # a broken plugin must not take the exporter down
            log.exception("collector plugin %s (%s) failed to load", ep.name, ep.value)
            continue
        name = getattr(obj, "name", None)
        if isinstance(obj, type) and isinstance(name, str):
            register(obj)
            _REGISTRY[name].source = ep.dist.name if ep.dist else ep.value
        loaded.append(ep.name)
    return loaded


def available() -> dict[str, CollectorInfo]:
    """All registered collectors (built-in modules are imported by ``obslab.exporters.host``)."""
    return dict(sorted(_REGISTRY.items()))


@dataclass
class Scrape:
    """Runs the enabled collectors, isolating each, and adds the per-collector self metrics."""

    collectors: dict[str, Any]
    prefix: str = "obslab"
    last_errors: dict[str, str] = field(default_factory=dict)

    def collect(self) -> Iterator[Metric]:
        success = GaugeMetricFamily(
            f"{self.prefix}_scrape_collector_success",
            "Whether the collector succeeded on this scrape (1) or failed (0).",
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            f"{self.prefix}_scrape_collector_duration_seconds",
            "Wall-clock time the collector took on this scrape, in seconds.",
            labels=["collector"],
        )
        no_data = GaugeMetricFamily(
            f"{self.prefix}_scrape_collector_no_data",
            "Whether the collector's source is absent on this machine (1), which is not an error.",
            labels=["collector"],
        )
        _scrape_local.cache = {}
        try:
            yield from self._run_all(success, duration, no_data)
        finally:
            _scrape_local.cache = None
        yield duration
        yield success
        yield no_data

    def _run_all(
        self, success: GaugeMetricFamily, duration: GaugeMetricFamily, no_data: GaugeMetricFamily
    ) -> Iterator[Metric]:
        for name, collector in self.collectors.items():
            start = time.perf_counter()
            ok, absent = 1.0, 0.0
            try:
                # Materialise inside the try: a generator that fails half-way emits nothing partial.
                families = list(collector.collect())
            except NoData as e:
                families, absent = [], 1.0
                log.debug("collector %s: no data (%s)", name, e)
            except Exception as e:
                families, ok = [], 0.0
                message = f"{type(e).__name__}: {e}"
                if self.last_errors.get(name) != message:  # log each distinct failure once, not every scrape
                    log.error("collector %s failed: %s", name, message, exc_info=True)
                self.last_errors[name] = message
            else:
                self.last_errors.pop(name, None)
            yield from families
            duration.add_metric([name], time.perf_counter() - start)
            success.add_metric([name], ok)
            no_data.add_metric([name], absent)


def as_prometheus_collector(obj: Any) -> _PromCollector:
    """Adapt anything with ``collect()`` for a prometheus_client ``CollectorRegistry``."""

    class _Adapter(_PromCollector):
        def collect(self) -> Iterable[Metric]:
            return obj.collect()

        def describe(self) -> Iterable[Metric]:  # no describe-time collect: scrape only on request
            return []

    return _Adapter()
