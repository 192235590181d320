"""Alert and recording rules: promtool check/test, naming, annotations, a test case for every alert, docs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from obslab.paths import DEPLOY_DIR, REPO_ROOT
from tests.conftest import require_binary

RULES = sorted((DEPLOY_DIR / "prometheus" / "rules").glob("*.yml"))
TESTS = sorted((DEPLOY_DIR / "prometheus" / "tests").glob("*.yml"))
DOCS = REPO_ROOT / "docs"


def _rules() -> list[dict]:
    return [r for path in RULES for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


def _alerts() -> dict[str, dict]:
    return {r["alert"]: r for r in _rules() if "alert" in r}


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "rules", *map(str, RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    promtool = require_binary("promtool")
    assert TESTS
    result = subprocess.run([promtool, "test", "rules", *map(str, TESTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_recording_rule_names_follow_level_metric_operation() -> None:
    records = [r["record"] for r in _rules() if "record" in r]
    assert records
    for name in records:
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), name
        assert ":obslab_" in name, f"{name}: the metric part keeps its obslab_ prefix"


def test_alert_coverage() -> None:
    """At least ten alerts, covering the four resources, the exporters and the service SLO."""
    alerts = _alerts()
    assert len(alerts) >= 10
    required = {
        "ObslabCPUSaturated",
        "ObslabRunQueueLatencyHigh",
        "ObslabCPUThrottled",
        "ObslabMemoryPressure",
        "ObslabOOMKill",
        "ObslabMajorPageFaults",
        "ObslabDiskSaturated",
        "ObslabDiskLatencyHigh",
        "ObslabFilesystemFillingUp",
        "ObslabTCPRetransmitsHigh",
        "ObslabListenOverflows",
        "ObslabTargetDown",
        "ObslabCollectorFailing",
        "ObslabDemoErrorBudgetFastBurn",
    }
    assert required <= set(alerts)
    assert "predict_linear" in alerts["ObslabFilesystemFillingUp"]["expr"]
    assert "obslab_scrape_collector_success" in alerts["ObslabCollectorFailing"]["expr"]
    fast = alerts["ObslabDemoErrorBudgetFastBurn"]["expr"]
    assert "ratio_rate5m" in fast and "ratio_rate30s" in fast, "multi-window: a long and a short window"
    assert {a["labels"]["resource"] for a in alerts.values()} >= {
        "cpu",
        "memory",
        "disk",
        "network",
        "service",
    }


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            out.add(text.replace(" ", "-"))
    return out


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_alert_annotations_and_runbook(name: str) -> None:
    alert = _alerts()[name]
    ann = alert["annotations"]
    assert ann.get("summary") and len(ann.get("description", "")) > 40
    assert {"severity", "resource", "signal"} <= set(alert["labels"])
    path, _, anchor = ann["runbook"].partition("#")
    target = REPO_ROOT / path
    assert target.exists(), f"runbook {ann['runbook']}: {path} missing"
    assert anchor in _anchors(target.read_text()), f"runbook anchor #{anchor} not in {path}"


def test_every_alert_has_firing_and_quiet_cases() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                (firing if t.get("exp_alerts") else quiet).add(t["alertname"])
    alerts = set(_alerts())
    assert alerts - firing == set(), "alerts with no firing test case"
    assert alerts - quiet == set(), "alerts with no not-firing test case"


def test_docs_describe_every_alert_and_dashboard() -> None:
    alerts_md = (DOCS / "alerts.md").read_text()
    for name in _alerts():
        assert f"## {name}" in alerts_md, f"docs/alerts.md has no section for {name}"
    # Sections link the labs that practise them; those anchors must exist once docs/labs.md does.
    labs_md = DOCS / "labs.md"
    linked = set(re.findall(r"labs\.md#([\w-]+)", alerts_md))
    if labs_md.exists():
        catalog = {p.stem for p in (REPO_ROOT / "labs" / "catalog").glob("*.yaml")}
        assert linked <= catalog, f"alerts.md links labs that do not exist: {linked - catalog}"
    dash_md = (DOCS / "dashboards.md").read_text()
    for path in Path(REPO_ROOT / "dashboards").glob("*.dashboard.py"):
        uid = re.search(r'uid="([^"]+)"', path.read_text())
        assert uid and uid.group(1) in dash_md, f"docs/dashboards.md does not describe {path.name}"
