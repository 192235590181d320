"""Dashboards as code: deterministic build, unique uids and titles, committed JSON current, panel hygiene."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from obslab.dashboards import build
from obslab.dashboards.cli import dashboards

from obslab.paths import DEPLOY_DIR

CONTRACT_UIDS = {"obslab-use", "obslab-ebpf", "obslab-processes", "obslab-demo", "obslab-lab"}
OURS = CONTRACT_UIDS  # fleet belongs to DEPLOY: checked for build/uniqueness only


def test_contract_uids_and_unique_titles() -> None:
    built = build.build_all()
    assert set(built) >= CONTRACT_UIDS
    titles = [d["title"] for d in built.values()]
    assert len(titles) == len(set(titles))
    for uid, dash in built.items():
        assert dash["uid"] == uid


def test_build_is_byte_identical_across_processes(tmp_path: Path) -> None:
    """Two builds in fresh interpreters with different hash seeds write the same bytes."""
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [str(Path(sys.executable).parent / "obslab"), "dashboards", "build", "--out", str(out)],
            check=True,
            env=env,
            capture_output=True,
        )
        outs.append({p.name: p.read_bytes() for p in sorted(out.glob("*.json"))})
    assert outs[0] == outs[1]
    assert set(outs[0]) == {f"{name}.json" for name in build.sources()}


def test_committed_json_equals_rebuild() -> None:
    """deploy/grafana/dashboards/*.json is what `obslab dashboards build` writes now (rebuild and commit)."""
    for name, data in build.build_named().values():
        path = build.OUTPUT_DIR / f"{name}.json"
        assert path.exists(), f"{path} missing: run `obslab dashboards build`"
        assert path.read_text() == build.to_text(data), f"{path} is stale: run `obslab dashboards build`"
    extra = {p.stem for p in build.OUTPUT_DIR.glob("*.json")} - set(build.sources())
    assert not extra, f"built JSON without a source: {extra}"


def test_duplicate_uid_is_refused(tmp_path: Path) -> None:
    src = (build.SOURCE_DIR / "lab.dashboard.py").read_text()
    (tmp_path / "a.dashboard.py").write_text(src)
    (tmp_path / "b.dashboard.py").write_text(src.replace('title="obslab / Lab"', 'title="other"'))
    with pytest.raises(build.DashboardBuildError, match="uid 'obslab-lab' is already used"):
        build.build_named(tmp_path)
    (tmp_path / "c.dashboard.py").write_text("x = 1\n")
    (tmp_path / "a.dashboard.py").unlink()
    (tmp_path / "b.dashboard.py").unlink()
    with pytest.raises(build.DashboardBuildError, match="no module-level `dashboard`"):
        build.build_named(tmp_path)


def _panels(uid: str) -> list[dict]:
    return [p for p in build.iter_panels(build.load(uid)) if p.get("type") != "row"]


@pytest.mark.parametrize("uid", sorted(OURS))
def test_panel_hygiene(uid: str) -> None:
    """Descriptions that teach, explicit units, $__rate_interval in every rate, the shared datasource."""
    dash = build.load(uid)
    titles = [p["title"] for p in build.iter_panels(dash)]
    assert len(titles) == len(set(titles)), "panel titles must be unique within a dashboard"
    for panel in _panels(uid):
        title = panel["title"]
        assert len(panel.get("description") or "") >= 40, f"{title}: needs a description that teaches"
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit, f"{title}: needs an explicit unit"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        for target in panel["targets"]:
            expr = target["expr"]
            assert target["datasource"]["uid"] == "${datasource}"
            for window in re.findall(r"\b(?:rate|irate|increase|delta|deriv)\([^\[]*\[([^\]]+)\]", expr):
                assert window == "$__rate_interval", f"{title}: {expr}"
            if "obslab_" in expr and "ALERTS" not in expr:
                assert "$job" in expr and "$instance" in expr, f"{title}: selects no $job/$instance: {expr}"


@pytest.mark.parametrize("uid", sorted(OURS))
def test_variables_are_chained(uid: str) -> None:
    variables = {v["name"]: v for v in build.load(uid)["templating"]["list"]}
    assert list(variables) == ["datasource", "job", "instance"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["current"]["value"] == "obslab-prometheus"
    assert variables["job"]["query"].startswith("label_values(")
    assert '{job=~"$job"}' in variables["instance"]["query"]


@pytest.mark.parametrize("uid", sorted(OURS))
def test_layout_fits_and_does_not_overlap(uid: str) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in build.iter_panels(build.load(uid)):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))


def test_use_overview_layout() -> None:
    """Summary row first, one row per resource, a collapsed exporter row last (node-mixin USE)."""
    rows = [p for p in build.load("obslab-use")["panels"] if p["type"] == "row"]
    assert [r["title"] for r in rows] == [
        "Summary",
        "CPU",
        "Memory",
        "Disk",
        "Network",
        "Exporter self-monitoring",
    ]
    assert rows[-1]["collapsed"] is True and rows[-1]["panels"]
    assert not any(r["collapsed"] for r in rows[:-1])


def test_expand_fills_variables_like_grafana() -> None:
    expr = 'rate(x{job=~"$job", instance=~"${instance}"}[$__rate_interval]) + [[job]]'
    assert build.expand(expr, {"job": "host", "__rate_interval": "20s"}) == (
        'rate(x{job=~"host", instance=~".+"}[20s]) + host'
    )
    with pytest.raises(KeyError, match=r"\$nope"):
        build.expand("up{a=~'$nope'}")
    assert build.dashboard_values(build.load("obslab-use")) == {
        "datasource": "obslab-prometheus",
        "job": ".+",
        "instance": ".+",
    }


def test_panel_queries_include_collapsed_rows() -> None:
    queries = build.panel_queries(build.load("obslab-use"))
    titles = {t for t, _ in queries}
    assert "Collectors failing" in titles  # inside the collapsed exporter row
    assert all(isinstance(e, str) and e for _, e in queries)


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    """Offline syntax check of every expanded query (promtool parses them as recording rules)."""
    rules = []
    for uid, dash in sorted(build.build_all().items()):
        values = build.dashboard_values(dash)
        for i, (_, expr) in enumerate(build.panel_queries(dash)):
            rules.append(
                {"record": f"check:{uid.replace('-', '_')}:q{i}", "expr": build.expand(expr, values)}
            )
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_build_list_queries(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(dashboards, ["build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "use.json").exists()
    assert runner.invoke(dashboards, ["build", "--out", str(tmp_path), "--check"]).exit_code == 0
    (tmp_path / "use.json").write_text("{}")
    assert runner.invoke(dashboards, ["build", "--out", str(tmp_path), "--check"]).exit_code == 1
    listed = json.loads(runner.invoke(dashboards, ["list", "--json"]).stdout)
    assert {r["uid"] for r in listed} >= CONTRACT_UIDS
    result = runner.invoke(dashboards, ["queries", "obslab-nope"])
    assert result.exit_code == 2
    result = runner.invoke(dashboards, ["queries", "obslab-lab", "--expand", "--json"])
    assert result.exit_code == 0
    assert all("$" not in q["expr"] for q in json.loads(result.stdout))


def test_provisioning() -> None:
    prov = DEPLOY_DIR / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "obslab.yaml").read_text())["datasources"]
    assert [d["uid"] for d in ds] == ["obslab-prometheus"]
    assert ds[0]["type"] == "prometheus" and ds[0]["jsonData"]["timeInterval"] == "5s"
    providers = yaml.safe_load((prov / "dashboards" / "obslab.yaml").read_text())["providers"]
    assert providers[0]["type"] == "file" and providers[0]["options"]["path"]
    # Every dashboard's datasource references resolve to that uid (directly or via $datasource).
    for uid, dash in build.build_all().items():
        for panel in build.iter_panels(dash):
            for obj in [panel, *(panel.get("targets") or [])]:
                ref = obj.get("datasource")
                if ref is not None:
                    assert ref.get("uid") in ("${datasource}", "obslab-prometheus"), (uid, panel.get("title"))
