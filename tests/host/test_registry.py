"""The collector registry: isolation, NoData, the per-scrape cache, and registration rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from obslab.exporters import registry
from obslab.exporters.registry import NoData, Scrape, scrape_cache
from prometheus_client.core import GaugeMetricFamily, Metric


class _Sharing:
    def __init__(self, reads: list[int]):
        self.reads = reads

    def collect(self) -> Iterator[Metric]:
        cache = scrape_cache()
        if "x" not in cache:
            self.reads.append(1)
            cache["x"] = len(self.reads)
        yield GaugeMetricFamily(f"t_{id(self)}", "test", value=cache["x"])


class _Raises:
    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("t_partial", "emitted before the failure", value=1)
        raise RuntimeError("boom")


class _Absent:
    def collect(self) -> Iterator[Metric]:
        raise NoData("no such file")


def _samples(scrape: Scrape) -> dict[str, float]:
    out = {}
    for fam in scrape.collect():
        for s in fam.samples:
            out[s.name + str(sorted(s.labels.items()))] = s.value
    return out


def test_cache_is_shared_within_a_scrape_and_fresh_for_the_next() -> None:
    reads: list[int] = []
    scrape = Scrape({"a": _Sharing(reads), "b": _Sharing(reads)})
    _samples(scrape)
    assert len(reads) == 1  # two collectors, one read
    _samples(scrape)
    assert len(reads) == 2  # a new scrape reads again
    assert scrape_cache() == {}  # outside a scrape: a throwaway dict


def test_failure_is_isolated_and_partial_output_dropped() -> None:
    s = _samples(Scrape({"bad": _Raises(), "absent": _Absent(), "good": _Sharing([])}))
    assert s["obslab_scrape_collector_success[('collector', 'bad')]"] == 0
    assert s["obslab_scrape_collector_success[('collector', 'absent')]"] == 1
    assert s["obslab_scrape_collector_no_data[('collector', 'absent')]"] == 1
    assert s["obslab_scrape_collector_success[('collector', 'good')]"] == 1
    assert not any(k.startswith("t_partial") for k in s)


def test_register_rejects_a_second_collector_with_the_same_name() -> None:
    class One:
        """First."""

        name = "test_dup"
        default_enabled = False

    class Two:
        """Second."""

        name = "test_dup"
        default_enabled = False

    registry.register(One)
    try:
        assert registry.available()["test_dup"].help == "First."
        with pytest.raises(ValueError):
            registry.register(Two)
    finally:
        registry._REGISTRY.pop("test_dup")
