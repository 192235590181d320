"""deploy/dropin: the scrape snippet, the file_sd targets and our rules, loaded by a real Prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from deploytools import start_host_exporter

from obslab import procs
from obslab.paths import DEPLOY_DIR
from obslab.prom import PrometheusServer

DROPIN = DEPLOY_DIR / "dropin"
RULES = DEPLOY_DIR / "prometheus" / "rules"


def test_snippet_targets_and_rules_in_a_real_prometheus(tmp_path: Path) -> None:
    """An 'existing' Prometheus (its own global config and job) gains obslab by pasting the snippet."""
    exporter, port = start_host_exporter(tmp_path)
    try:
        snippet = yaml.safe_load((DROPIN / "scrape-obslab.yml").read_text())
        assert isinstance(snippet, list) and len(snippet) == 1
        job = snippet[0]
        # Point the target file at this test's exporter (the shipped one names the default ports).
        groups = yaml.safe_load((DROPIN / "obslab-targets.yml").read_text())
        assert {g["labels"]["job"] for g in groups} == {"host", "ebpf", "demo"}
        for g in groups:
            default = {"host": 19100, "ebpf": 19101, "demo": 19200}[g["labels"]["job"]]
            assert g["targets"] == [f"127.0.0.1:{default}"]
            g["targets"] = [f"127.0.0.1:{port if g['labels']['job'] == 'host' else procs.free_port()}"]
        targets = tmp_path / "obslab-targets.yml"
        targets.write_text(yaml.safe_dump(groups))
        assert job["file_sd_configs"][0]["files"] == ["/etc/prometheus/file_sd/obslab-targets.yml"]
        job["file_sd_configs"][0]["files"] = [str(targets)]
        job["file_sd_configs"][0]["refresh_interval"] = "5s"
        existing: dict[str, Any] = {
            "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
            "rule_files": [str(RULES / "*.yml")],
            "scrape_configs": [
                {"job_name": "someone-elses", "static_configs": [{"targets": ["127.0.0.1:1"]}]}
            ],
        }
        existing["scrape_configs"].extend(snippet)
        with PrometheusServer(yaml.safe_dump(existing, sort_keys=False)) as prom:
            c = prom.client
            up = c.wait_for('up{job="host"} == 1', timeout=60)
            assert up[0]["metric"]["instance"] == f"127.0.0.1:{port}"
            # The file_sd groups became targets with their own job labels; absent exporters are simply down.
            jobs = {t["labels"]["job"] for t in c.targets()}
            assert {"host", "ebpf", "demo", "someone-elses"} <= jobs
            c.wait_for("obslab_cpu_seconds_total", timeout=60)
            # Every rule group in deploy/prometheus/rules is loaded.
            want = sum(len(yaml.safe_load(p.read_text())["groups"]) for p in RULES.glob("*.yml"))
            assert len(c.rules()) == want
    finally:
        procs.stop(exporter)


def test_grafana_provider_snippet() -> None:
    provider = yaml.safe_load((DROPIN / "grafana-dashboards.yml").read_text())
    assert provider["apiVersion"] == 1
    (p,) = provider["providers"]
    assert p["type"] == "file" and p["options"]["path"].startswith("/")
