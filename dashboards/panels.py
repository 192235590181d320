"""Shared building blocks for obslab's dashboards (also used by ``fleet.dashboard.py``).

Every dashboard gets the same three variables — ``$datasource`` (a Prometheus), ``$job`` and ``$instance``
(chained with ``label_values`` on a metric the dashboard is about) — and every panel query selects
``{job=~"$job", instance=~"$instance"}`` (``SEL``) and uses ``$__rate_interval`` in each rate, so panels
stay correct at any scrape interval (Grafana makes it at least 4 scrape intervals: 20s at obslab's 5s).

Panels are declared with a width and height; ``layout`` flows them left to right in rows of 24 columns
and gives each a ``gridPos``, so a dashboard file reads as a list of what it shows, not of coordinates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attr
from grafanalib.core import (
    Dashboard,
    GridPos,
    Panel,
    RowPanel,
    Stat,
    Target,
    Template,
    Templating,
    Time,
    TimeSeries,
)
from obslab.dashboards.grafanalib_ext import SCHEMA_VERSION, BarGaugeV2, HeatmapV2, thresholds, with_json

#: The Grafana datasource uid provisioned by deploy/grafana/provisioning (and the variable's default).
DATASOURCE_UID = "obslab-prometheus"
DS: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}

#: The label matchers every panel query carries.
SEL = 'job=~"$job", instance=~"$instance"'

#: Reusable threshold ladders.
RATIO_STEPS = thresholds((None, "green"), (0.7, "orange"), (0.9, "red"))
ANY_BAD = thresholds((None, "green"), (0.5, "red"))


def sel(**labels: str) -> str:
    """``{job=~"$job", instance=~"$instance", k="v"...}``; a value starting with ``~`` or ``!`` is a regex
    or negative match (``mode="~idle|iowait"`` → ``mode=~"idle|iowait"``)."""
    parts = [SEL]
    for key, value in labels.items():
        if value.startswith("!~"):
            parts.append(f'{key}!~"{value[2:]}"')
        elif value.startswith("~"):
            parts.append(f'{key}=~"{value[1:]}"')
        elif value.startswith("!"):
            parts.append(f'{key}!="{value[1:]}"')
        else:
            parts.append(f'{key}="{value}"')
    return "{" + ", ".join(parts) + "}"


Query = str | tuple[str, str]  # an expr, or (expr, legendFormat)


def _targets(
    queries: Query | Sequence[Query], *, instant: bool = False, fmt: str = "time_series"
) -> list[Target]:
    items: Sequence[Query] = [queries] if isinstance(queries, str | tuple) else queries
    out = []
    for i, q in enumerate(items):
        expr, legend = (q, "") if isinstance(q, str) else q
        out.append(
            Target(
                expr=expr,
                legendFormat=legend,
                refId=chr(ord("A") + i),
                datasource=DS,
                instant=instant,
                format=fmt,
                intervalFactor=1,
            )
        )
    return out


def _sized(panel: Panel, w: int, h: int) -> Panel:
    return attr.evolve(panel, gridPos=GridPos(h=h, w=w, x=0, y=0))


def timeseries(
    title: str,
    description: str,
    queries: Query | Sequence[Query],
    unit: str,
    *,
    w: int = 8,
    h: int = 8,
    min: int | None = None,
    max: int | None = None,
    stack: bool = False,
    fill: int = 10,
    steps: list[dict[str, Any]] | None = None,
    log: bool = False,
) -> Panel:
    """A time series panel; ``steps`` draws threshold lines (what "bad" looks like)."""
    panel = TimeSeries(
        title=title,
        description=description,
        dataSource=DS,
        targets=_targets(queries),
        unit=unit,
        valueMin=min,
        valueMax=max,
        fillOpacity=fill,
        stacking={"mode": "normal", "group": "A"} if stack else {},
        legendDisplayMode="table",
        legendPlacement="bottom",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        tooltipSort="desc",
        showPoints="never",
        thresholds=steps or thresholds((None, "green")),
        thresholdsStyleMode="dashed" if steps else "off",
        scaleDistributionType="log" if log else "linear",
    )
    return _sized(panel, w, h)


def stat(
    title: str,
    description: str,
    queries: Query | Sequence[Query],
    unit: str,
    *,
    w: int = 3,
    h: int = 4,
    steps: list[dict[str, Any]] | None = None,
    decimals: int | None = None,
    no_value: str = "no data",
) -> Panel:
    """A single-number panel (last value), coloured by ``steps``."""
    panel = Stat(
        title=title,
        description=description,
        dataSource=DS,
        targets=_targets(queries),
        format=unit,
        decimals=decimals,
        reduceCalc="lastNotNull",
        colorMode="background",
        graphMode="area",
        noValue=no_value,
        thresholds=steps or RATIO_STEPS,
    )
    return _sized(panel, w, h)


def heatmap(
    title: str, description: str, bucket_rate: str, *, unit: str = "s", w: int = 12, h: int = 9
) -> Panel:
    """A heatmap of a histogram: ``bucket_rate`` is ``sum by (le) (rate(..._bucket{...}[$__rate_interval]))``."""
    target = _targets((bucket_rate, "{{le}}"), fmt="heatmap")
    panel = HeatmapV2(title=title, description=description, dataSource=DS, targets=target, unit=unit)
    return _sized(panel, w, h)


def bars(
    title: str,
    description: str,
    queries: Query | Sequence[Query],
    unit: str,
    *,
    w: int = 8,
    h: int = 8,
    max: float | None = None,
) -> Panel:
    """A bar gauge (last value of each series): top-N lists."""
    panel = BarGaugeV2(
        title=title, description=description, dataSource=DS, targets=_targets(queries), unit=unit, minValue=0
    )
    if max is not None:
        panel = attr.evolve(panel, maxValue=max)
    return _sized(panel, w, h)


def row(title: str, panels: Sequence[Panel] = (), *, collapsed: bool = False) -> list[Panel]:
    """A row header followed by its panels; a collapsed row carries its panels inside it (Grafana's rule)."""
    header = RowPanel(title=title, collapsed=collapsed, gridPos=GridPos(h=1, w=24, x=0, y=0))
    if collapsed:
        return [attr.evolve(header, panels=list(panels))]
    return [header, *panels]


def layout(items: Iterable[Panel]) -> list[Panel]:
    """Give every panel its (x, y) by flowing the declared sizes left to right, 24 columns wide."""
    out: list[Panel] = []
    x = y = line_h = 0

    def place(panel: Panel) -> Panel:
        nonlocal x, y, line_h
        pos = panel.gridPos
        if x + pos.w > 24:
            x, y, line_h = 0, y + line_h, 0
        placed = attr.evolve(panel, gridPos=GridPos(h=pos.h, w=pos.w, x=x, y=y))
        x += pos.w
        line_h = line_h if line_h > pos.h else pos.h
        return placed

    for panel in items:
        if isinstance(panel, RowPanel):
            x, y, line_h = 0, y + line_h, 0
            inner = []
            header = place(panel)
            x, y, line_h = 0, y + 1, 0
            for child in panel.panels:  # collapsed: children get positions below the header
                inner.append(place(child))
            if panel.panels:
                x, y, line_h = 0, y + line_h, 0
                header = attr.evolve(header, panels=inner)
            out.append(header)
        else:
            out.append(place(panel))
    return out


def variables(anchor: str, *, job_default: str = "$__all") -> Templating:
    """``$datasource``, ``$job`` and ``$instance``, chained: jobs that export ``anchor``, then their instances."""
    datasource = Template(
        name="datasource",
        label="Data source",
        query="prometheus",
        type="datasource",
        default=DATASOURCE_UID,
        hide=0,
    )
    job = Template(
        name="job",
        label="Job",
        query=f"label_values({anchor}, job)",
        dataSource=DS,
        includeAll=True,
        multi=True,
        allValue=".+",
        default=job_default,
        refresh=2,
        sort=1,
    )
    instance = Template(
        name="instance",
        label="Instance",
        query=f'label_values({anchor}{{job=~"$job"}}, instance)',
        dataSource=DS,
        includeAll=True,
        multi=True,
        allValue=".+",
        default="$__all",
        refresh=2,
        sort=1,
    )
    for var in (job, instance):  # Grafana shows the "All" option as text "All", value "$__all"
        if var.default == "$__all":
            var._current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return Templating(list=[datasource, job, instance])


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    anchor: str,
    panels: Iterable[Panel],
    tags: Sequence[str] = (),
    time_from: str = "now-30m",
    refresh: str = "10s",
) -> Dashboard:
    """An obslab dashboard: fixed uid, the shared variables, laid-out panels with stable ids."""
    return Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=["obslab", *tags],
        templating=variables(anchor),
        panels=layout(panels),
        time=Time(time_from, "now"),
        refresh=refresh,
        timezone="browser",
        graphTooltip=1,  # shared crosshair: the moment a fault starts lines up across panels
        schemaVersion=SCHEMA_VERSION,
        editable=True,
    ).auto_panel_ids()


__all__ = [
    "ANY_BAD",
    "DATASOURCE_UID",
    "DS",
    "RATIO_STEPS",
    "SEL",
    "bars",
    "dashboard",
    "heatmap",
    "layout",
    "row",
    "sel",
    "stat",
    "thresholds",
    "timeseries",
    "variables",
    "with_json",
]
