"""Build the dashboards: load each ``*.dashboard.py``, render Grafana JSON, write it deterministically.

A dashboard file defines a module-level ``dashboard`` (a grafanalib ``Dashboard`` with a hard-coded uid).
File names contain dots, so the modules are loaded by path with importlib, not imported by name.
The JSON is written sorted and indented with a trailing newline: the same source gives the same bytes,
so ``deploy/grafana/dashboards/*.json`` is committed and a test checks it equals a fresh build.

``panel_queries`` and ``expand`` let the console and the tests run a dashboard's queries against
Prometheus the way Grafana would (template variables and ``$__rate_interval`` filled in).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder

from obslab.paths import DEPLOY_DIR

SOURCE_DIR = Path(__file__).resolve().parent
OUTPUT_DIR = DEPLOY_DIR / "grafana" / "dashboards"
SUFFIX = ".dashboard.py"


class DashboardBuildError(Exception):
    """A dashboard file is broken: no ``dashboard``, a missing or duplicate uid or title."""


def sources(directory: Path = SOURCE_DIR) -> dict[str, Path]:
    """``name -> path`` of every ``<name>.dashboard.py``, sorted by name."""
    return {p.name[: -len(SUFFIX)]: p for p in sorted(directory.glob(f"*{SUFFIX}"))}


def _load_module_dashboard(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"obslab.dashboards._src_{name}", path)
    if spec is None or spec.loader is None:
        raise DashboardBuildError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dash = getattr(module, "dashboard", None)
    if dash is None or not hasattr(dash, "to_json_data"):
        raise DashboardBuildError(f"{path}: defines no module-level `dashboard` (a grafanalib Dashboard)")
    return dash


def render(dash: Any) -> dict[str, Any]:
    """Grafana JSON (plain dicts and lists) of a grafanalib dashboard."""
    data: dict[str, Any] = json.loads(json.dumps(dash.to_json_data(), cls=DashboardEncoder))
    return data


def to_text(data: Mapping[str, Any]) -> str:
    """The canonical bytes: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def build_named(directory: Path = SOURCE_DIR) -> dict[str, tuple[str, dict[str, Any]]]:
    """``uid -> (file name, JSON)`` for every dashboard file, checking uids and titles are set and unique."""
    built: dict[str, tuple[str, dict[str, Any]]] = {}
    titles: dict[str, str] = {}
    for name, path in sources(directory).items():
        data = render(_load_module_dashboard(name, path))
        uid, title = data.get("uid"), data.get("title")
        if not uid or not title:
            raise DashboardBuildError(f"{path}: the dashboard needs a hard-coded uid and a title")
        if uid in built:
            raise DashboardBuildError(f"{path}: uid {uid!r} is already used by {built[uid][0]}.dashboard.py")
        if title in titles:
            raise DashboardBuildError(
                f"{path}: title {title!r} is already used by {titles[title]}.dashboard.py"
            )
        titles[title] = name
        built[uid] = (name, data)
    return built


@functools.lru_cache(maxsize=1)
def _cached() -> dict[str, tuple[str, dict[str, Any]]]:
    return build_named()


def build_all() -> dict[str, dict[str, Any]]:
    """``uid -> Grafana JSON`` of every dashboard (a fresh copy each call)."""
    return {uid: copy.deepcopy(data) for uid, (_, data) in _cached().items()}


def load(uid: str) -> dict[str, Any]:
    """One dashboard's Grafana JSON by uid (``obslab-use``, ``obslab-lab``...); KeyError if unknown."""
    built = _cached()
    if uid not in built:
        raise KeyError(f"no dashboard with uid {uid!r}; known: {', '.join(sorted(built))}")
    return copy.deepcopy(built[uid][1])


def write_all(out: Path = OUTPUT_DIR) -> list[Path]:
    """Write ``<name>.json`` for every dashboard into ``out``; returns the paths (only changed files are
    rewritten, so mtimes stay put for Grafana's file watcher)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in build_named().values():
        path = out / f"{name}.json"
        text = to_text(data)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def iter_panels(dash: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows, in dashboard order (rows themselves included)."""
    for panel in dash.get("panels", []):
        yield panel
        yield from panel.get("panels", []) or []


def panel_queries(dash: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(panel title, PromQL expr)]`` of every visible query target in the dashboard."""
    out = []
    for panel in iter_panels(dash):
        for target in panel.get("targets", []) or []:
            expr = target.get("expr")
            if expr and not target.get("hide"):
                out.append((panel.get("title", ""), expr))
    return out


_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")

#: What Grafana substitutes for its built-in interval variables at obslab's 5s scrape interval.
DEFAULT_VALUES: dict[str, str] = {
    "__rate_interval": "20s",  # max(4 x scrape interval, step + scrape interval)
    "__interval": "5s",
    "__range": "30m",
    "job": ".+",
    "instance": ".+",
    "datasource": "obslab-prometheus",
}


def dashboard_values(dash: Mapping[str, Any]) -> dict[str, str]:
    """What Grafana substitutes for each of the dashboard's own variables on first load: the default
    (current) value; for "All", the variable's allValue (``.+`` / ``.*``); a datasource, obslab's uid."""
    out: dict[str, str] = {}
    for var in dash.get("templating", {}).get("list", []):
        name = var.get("name")
        if not name:
            continue
        if var.get("type") == "datasource":
            out[name] = DEFAULT_VALUES["datasource"]
            continue
        current = (var.get("current") or {}).get("value")
        values = current if isinstance(current, list) else [current]
        values = [v for v in values if v not in (None, "")]
        if not values or "$__all" in values:
            out[name] = var.get("allValue") or ".*"
        else:
            out[name] = "|".join(str(v) for v in values)
    return out


def expand(expr: str, values: Mapping[str, str] | None = None) -> str:
    """``expr`` with ``$var``, ``${var}``, ``${var:fmt}`` and ``[[var]]`` replaced (defaults: DEFAULT_VALUES).

    Multi-value variables are passed already joined as a regex (``"a|b"``), as Grafana does for ``=~``.
    An unknown variable raises KeyError, so a typo in a panel query cannot pass silently.
    """
    merged = {**DEFAULT_VALUES, **(values or {})}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in merged:
            raise KeyError(f"unknown template variable ${name} in {expr!r}")
        return merged[name]

    return _VAR.sub(sub, expr)
