"""The console's live charts: which panels of a generated dashboard it draws, and their data.

The console draws the same dashboard JSON Grafana loads (``obslab.dashboards.build.load``). The browser never
sends PromQL: it names a dashboard uid and a panel id, and the server runs that panel's own queries with the
template variables filled in here. Pure functions; the Prometheus call is passed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: Dashboards the console may query (the Lab dashboard, and USE for the machine-wide view).
CHART_DASHBOARDS: tuple[str, ...] = ("obslab-lab", "obslab-use")

#: Panel types drawn as a line chart, and those shown as a single latest value.
LINE_TYPES = frozenset({"timeseries", "graph"})
STAT_TYPES = frozenset({"stat", "gauge", "bargauge"})

MAX_SERIES = 20  # per panel: a runaway label set must not flood the browser
MAX_POINTS = 240  # per series: one point per pixel column of a small chart is plenty
MIN_STEP = 5.0  # the stack's scrape interval


def iter_panels(dash: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """Every panel, rows' nested panels included, in dashboard order."""
    for panel in dash.get("panels", []) or []:
        yield panel
        yield from panel.get("panels", []) or []


def _targets(panel: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [t for t in panel.get("targets", []) or [] if t.get("expr") and not t.get("hide")]


def chart_panels(dash: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The drawable panels of a dashboard: ``[{id, title, kind: line|stat, unit, description}]``."""
    out = []
    for panel in iter_panels(dash):
        ptype = panel.get("type", "")
        if ptype not in LINE_TYPES | STAT_TYPES or not _targets(panel) or "id" not in panel:
            continue
        defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
        out.append(
            {
                "id": int(panel["id"]),
                "title": str(panel.get("title", "")),
                "kind": "line" if ptype in LINE_TYPES else "stat",
                "unit": str(defaults.get("unit") or panel.get("format") or ""),
                "description": str(panel.get("description", "") or ""),
            }
        )
    return out


def find_panel(dash: Mapping[str, Any], panel_id: int) -> dict[str, Any] | None:
    for panel in iter_panels(dash):
        if panel.get("id") == panel_id and _targets(panel):
            return panel
    return None


def variable_values(dash: Mapping[str, Any]) -> dict[str, str]:
    """Values for the dashboard's own template variables, as the console uses them.

    A variable's saved current value when it names one concrete value; otherwise (``All``, a query variable
    with nothing selected) the match-everything regex Grafana would send for ``=~``.
    """
    values: dict[str, str] = {}
    for var in (dash.get("templating") or {}).get("list", []) or []:
        name = var.get("name")
        if not name or var.get("type") == "datasource":
            continue
        current = (var.get("current") or {}).get("value")
        if isinstance(current, list):
            current = current[0] if len(current) == 1 else None
        if var.get("type") == "constant":
            current = var.get("query", current)
        if isinstance(current, str) and current and current not in ("$__all", "All"):
            values[name] = current
        else:
            values[name] = ".+"
    return values


def panel_queries(
    dash: Mapping[str, Any], panel: Mapping[str, Any], expand: Callable[[str, Mapping[str, str]], str]
) -> list[tuple[str, str]]:
    """``[(expanded expr, legend format)]`` of a panel; ``expand`` substitutes the variables (DASH's)."""
    values = variable_values(dash)
    return [(expand(t["expr"], values), str(t.get("legendFormat") or "")) for t in _targets(panel)]


_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def legend(fmt: str, labels: Mapping[str, str], expr: str) -> str:
    """A series label: Grafana's ``{{label}}`` legend format, else the label set, else the expression."""
    if fmt:
        return _LEGEND.sub(lambda m: str(labels.get(m.group(1), "")), fmt)
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if shown:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"
    return labels.get("__name__", expr)


def time_grid(end: float, minutes: int) -> tuple[float, float, float]:
    """``(start, end, step)`` for a range of ``minutes`` ending at ``end``, at most MAX_POINTS steps."""
    span = minutes * 60.0
    step = max(MIN_STEP, math.ceil(span / MAX_POINTS / MIN_STEP) * MIN_STEP)
    end = math.floor(end / step) * step
    return end - span, end, step


def to_columns(
    results: Iterable[tuple[str, str, list[dict[str, Any]]]], start: float, end: float, step: float
) -> dict[str, Any]:
    """Range-query results ``(expr, legend format, result)`` as aligned columns (uPlot's data layout).

    ``{"timestamps": [...], "series": [{"label", "values": [float|None]}], "truncated": bool}``; a missing
    sample is None (a gap), NaN and infinities too (JSON has no NaN).
    """
    n = round((end - start) / step) + 1
    timestamps = [start + i * step for i in range(n)]
    series: list[dict[str, Any]] = []
    truncated = False
    for expr, fmt, result in results:
        for item in result:
            if len(series) >= MAX_SERIES:
                truncated = True
                break
            values: list[float | None] = [None] * n
            for t, v in item.get("values", []):
                i = round((float(t) - start) / step)
                if 0 <= i < n:
                    f = float(v)
                    values[i] = f if math.isfinite(f) else None
            series.append({"label": legend(fmt, item.get("metric", {}), expr), "values": values})
    return {"timestamps": timestamps, "series": series, "truncated": truncated}


def summarize_alerts(alerts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Prometheus ``/api/v1/alerts`` entries as the console shows them (firing first, then pending)."""
    out = []
    for a in alerts:
        labels = a.get("labels") or {}
        ann = a.get("annotations") or {}
        out.append(
            {
                "name": labels.get("alertname", ""),
                "state": a.get("state", ""),
                "severity": labels.get("severity", ""),
                "summary": ann.get("summary", ""),
                "description": ann.get("description", ""),
                "active_at": a.get("activeAt"),
                "labels": {k: v for k, v in labels.items() if k not in ("alertname", "severity")},
            }
        )
    order = {"firing": 0, "pending": 1}
    return sorted(out, key=lambda x: (order.get(x["state"], 2), x["name"]))
