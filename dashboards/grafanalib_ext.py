"""Small extensions to grafanalib 0.7.1 for panel options it does not model (Grafana 9/10 schema).

We extend, we do not fork: new panel types subclass ``grafanalib.core.Panel`` and reuse its ``panel_json``;
options that grafanalib lacks on its own panels go through ``with_json``, which deep-merges into the panel's
``extraJson`` (grafanalib's documented escape hatch).
"""

from __future__ import annotations

import copy
from typing import Any

import attr
from grafanalib.core import Panel

#: Grafana 10's dashboard schema: the "new" heatmap, stat/bargauge fieldConfig thresholds.
SCHEMA_VERSION = 38


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def with_json(panel: Panel, extra: dict[str, Any]) -> Panel:
    """A copy of ``panel`` whose JSON is deep-merged with ``extra`` (for options grafanalib lacks)."""
    return attr.evolve(panel, extraJson=_merge(panel.extraJson or {}, extra))


def thresholds(*steps: tuple[float | None, str]) -> list[dict[str, Any]]:
    """Threshold steps in the fieldConfig form: ``thresholds((None, "green"), (0.8, "red"))``."""
    return [{"color": color, "value": value} for value, color in steps]


@attr.s
class HeatmapV2(Panel):
    """Grafana 9+'s heatmap panel fed by pre-bucketed Prometheus histograms (``format: heatmap``).

    grafanalib's ``Heatmap`` emits the legacy (Grafana 7) panel, which recalculates buckets from raw series;
    here the exporter's log2 buckets are shown as they are (``calculate: false``), on a log y axis.
    """

    unit = attr.ib(default="s")
    colorScheme = attr.ib(default="Oranges")

    def to_json_data(self) -> dict[str, Any]:
        return self.panel_json(
            {
                "type": "heatmap",
                "fieldConfig": {"defaults": {"unit": self.unit}},
                "options": {
                    "calculate": False,
                    "cellGap": 1,
                    "color": {
                        "exponent": 0.5,
                        "fill": "dark-orange",
                        "mode": "scheme",
                        "scale": "exponential",
                        "scheme": self.colorScheme,
                        "steps": 64,
                    },
                    "filterValues": {"le": 1e-9},
                    "legend": {"show": True},
                    "rowsFrame": {"layout": "auto"},
                    "showValue": "never",
                    "tooltip": {"show": True, "yHistogram": True},
                    "yAxis": {"axisPlacement": "left", "unit": self.unit, "reverse": False},
                },
            }
        )


@attr.s
class BarGaugeV2(Panel):
    """Grafana 8+'s bar gauge (grafanalib's ``BarGauge`` writes the Grafana 6 ``fieldOptions`` form)."""

    unit = attr.ib(default="none")
    displayMode = attr.ib(default="gradient")
    orientation = attr.ib(default="horizontal")
    minValue = attr.ib(default=None)
    maxValue = attr.ib(default=None)

    def to_json_data(self) -> dict[str, Any]:
        return self.panel_json(
            {
                "type": "bargauge",
                "fieldConfig": {
                    "defaults": {"unit": self.unit, "min": self.minValue, "max": self.maxValue},
                },
                "options": {
                    "displayMode": self.displayMode,
                    "orientation": self.orientation,
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "showUnfilled": True,
                },
            }
        )
