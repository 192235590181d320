"""Classroom, for real: three lab nodes on loopback write into one VictoriaMetrics; the fleet view reads it.

Each simulated lab VM = a real `obslab exporter host` + its own full Prometheus (evaluating rules, as
`obslab up` runs it) + a Prometheus in agent mode rendered by deploy/classroom/agent_config.py, which scrapes
the exporter and federates ALERTS from the local Prometheus, remote-writing to a real VictoriaMetrics.
Then every query of the fleet dashboard runs against VictoriaMetrics' Prometheus-compatible API.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploytools import (
    FLEET_PATH,
    AgentServer,
    VictoriaMetrics,
    agent_config_module,
    fleet_queries,
    load_fleet,
    start_host_exporter,
)

from obslab import procs
from obslab.paths import DEPLOY_DIR, REPO_ROOT
from obslab.prom import PromAPIError, PromClient, PrometheusServer, ScrapeJob, render_config

SCRAPE = "2s"
RATE_WINDOW = "20s"  # what Grafana's $__rate_interval becomes for a 2 s scrape (4 x interval, rounded up)
LEARNERS = ("alice", "bob", "chen")
# Fleet panels that may be empty here by design: no lab runs, no fault is injected and no demo service
# runs on the simulated nodes (the lab and demo areas have their own end-to-end tests).
EMPTY_BY_DESIGN = {
    "Lab state by learner": "no lab runs on the simulated nodes",
    "Faults injected": "no fault is injected on the simulated nodes",
    "Demo service error ratio": "no demo service runs on the simulated nodes",
    "Demo service p90 latency": "no demo service runs on the simulated nodes",
    "OOM kills": "increase() over a window with no OOM kill may be 0-valued or absent",
}
# A rule only this test loads into the nodes' own Prometheus, so ALERTS exists to travel through federation.
_TEST_RULES = {
    "groups": [
        {
            "name": "obslabtest-deploy",
            "rules": [
                {
                    "alert": "ObslabClassroomPipelineTest",
                    "expr": 'up{job="host"} == 1',
                    "labels": {"severity": "info"},
                    "annotations": {"summary": "the classroom test's marker alert"},
                }
            ],
        }
    ]
}


@dataclass
class Node:
    learner: str
    exporter: procs.Proc
    exporter_port: int
    local: PrometheusServer
    agent: AgentServer
    workdir: Path
    extra: list[Any] = field(default_factory=list)


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VictoriaMetrics, list[Node]]]:
    agent_config = agent_config_module()
    vm = VictoriaMetrics().start()
    nodes: list[Node] = []
    try:
        for i, learner in enumerate(LEARNERS):
            workdir = tmp_path_factory.mktemp(f"node-{learner}")
            exporter, port = start_host_exporter(workdir)
            rules = workdir / "test-rules.yml"
            rules.write_text(yaml.safe_dump(_TEST_RULES))
            rule_files = [*sorted((DEPLOY_DIR / "prometheus" / "rules").glob("*.yml")), rules]
            local = PrometheusServer(
                render_config(
                    [ScrapeJob("host", [f"127.0.0.1:{port}"])], scrape_interval=SCRAPE, rule_files=rule_files
                )
            ).start()
            text = agent_config.render_agent_config(
                learner=learner,
                node=f"lab-{i + 1:02d}",
                central_url=vm.url,
                jobs={"host": f"127.0.0.1:{port}"},
                local_prometheus=f"127.0.0.1:{local.port}",
                classroom="obslabtest",
                scrape_interval=SCRAPE,
            )
            agent = AgentServer(text)
            agent.start()
            nodes.append(Node(learner, exporter, port, local, agent, workdir))
        yield vm, nodes
    finally:
        for n in nodes:
            n.agent.stop()
            n.local.stop()
            procs.stop(n.exporter)
        vm.stop()


def _wait(client: PromClient, expr: str, want: int, timeout: float = 90) -> list[dict[str, Any]]:
    """Poll VictoriaMetrics until ``expr`` returns ``want`` series (they arrive by remote write, in batches)."""
    return client.wait_for(expr, lambda r: len(r) == want, timeout=timeout)


def test_three_nodes_reach_victoriametrics(classroom: tuple[VictoriaMetrics, list[Node]]) -> None:
    vm, nodes = classroom
    c = vm.client
    up = _wait(c, 'max by (learner, instance) (up{job="host", classroom="obslabtest"})', 3)
    got = {(r["metric"]["learner"], r["metric"]["instance"]) for r in up}
    assert got == {("alice", "lab-01"), ("bob", "lab-02"), ("chen", "lab-03")}
    assert all(float(r["value"][1]) == 1 for r in up)
    # The exporter's own series arrive per learner, with the node name as instance.
    cpu = _wait(c, "count by (learner, instance) (obslab_cpu_seconds_total)", 3)
    assert all(float(r["value"][1]) >= 1 for r in cpu)
    # ALERTS is evaluated on each node's own Prometheus and reaches the centre through federation.
    alerts = _wait(c, 'count by (learner) (ALERTS{alertname="ObslabClassroomPipelineTest"})', 3, timeout=120)
    assert {r["metric"]["learner"] for r in alerts} == set(LEARNERS)
    # Each node's local Prometheus agrees with the centre on the exporter being up (same data, two paths).
    for n in nodes:
        assert n.local.client.value('up{job="host"}') == 1.0


def test_fleet_dashboard_queries_against_victoriametrics(
    classroom: tuple[VictoriaMetrics, list[Node]],
) -> None:
    vm, _ = classroom
    c = vm.client
    _wait(c, 'count by (learner) (up{job="host"})', 3)
    # rate() windows need a few samples per series; wait until the CPU panel has a value for everyone.
    _wait(c, f'count by (learner) (rate(obslab_cpu_seconds_total{{mode="idle"}}[{RATE_WINDOW}]))', 3)
    _wait(c, 'count by (learner) (ALERTS{alertname="ObslabClassroomPipelineTest"})', 3, timeout=120)
    queries = fleet_queries(load_fleet(), {"learner": ".*", "__rate_interval": RATE_WINDOW})
    assert len(queries) >= 15
    empty, errors = [], []
    for title, expr in queries:
        try:
            result = c.query(expr)
        except PromAPIError as e:
            errors.append(f"{title}: {expr}\n  {e}")
            continue
        if not result:
            empty.append(title)
    assert not errors, "fleet queries VictoriaMetrics rejects:\n" + "\n".join(errors)
    unexpected = sorted(set(empty) - set(EMPTY_BY_DESIGN))
    assert not unexpected, f"fleet panels with no data (not empty by design): {unexpected}"
    # The per-learner panels really split by learner.
    per_learner = c.query(
        f'1 - avg by (learner, instance) (rate(obslab_cpu_seconds_total{{mode="idle"}}[{RATE_WINDOW}]))'
    )
    assert {r["metric"]["learner"] for r in per_learner} == set(LEARNERS)
    # The dashboard's learner variable query also works here (label_values -> /api/v1/label/.../values).
    with urllib.request.urlopen(f"{vm.url}/api/v1/label/learner/values", timeout=10) as resp:
        assert set(LEARNERS) <= set(json.load(resp)["data"])


def test_sizing_measured(classroom: tuple[VictoriaMetrics, list[Node]], artifacts: Path) -> None:
    """Series per node from the real exporter, ingestion rate and bytes per sample from VictoriaMetrics."""
    vm, nodes = classroom
    c = vm.client
    _wait(c, 'count by (learner) (up{job="host"})', 3)
    with urllib.request.urlopen(f"http://127.0.0.1:{nodes[0].exporter_port}/metrics", timeout=10) as resp:
        exposition = resp.read().decode()
    exporter_series = sum(1 for line in exposition.splitlines() if line and not line.startswith("#"))
    vm.flush()
    per_node = {n.learner: vm.series_count(f'{{learner="{n.learner}"}}') for n in nodes}
    assert all(v >= exporter_series * 0.5 for v in per_node.values()), (per_node, exporter_series)

    def rows() -> float:
        return sum(v for k, v in vm.metrics().items() if k.startswith("vm_rows_inserted_total"))

    r0, t0 = rows(), time.monotonic()
    deadline = t0 + 20
    while time.monotonic() < deadline:
        time.sleep(2)
    r1, t1 = rows(), time.monotonic()
    rate = (r1 - r0) / (t1 - t0)
    interval = float(SCRAPE.rstrip("s"))
    expected = sum(per_node.values()) / interval
    # Ingestion matches series / interval (within a wide band: batching and a busy box).
    assert 0.3 * expected < rate < 3 * expected, (rate, expected)
    vm.flush()
    m = vm.metrics()
    stored_rows = sum(v for k, v in m.items() if k.startswith("vm_rows{") and "storage/" in k)
    stored_bytes = sum(v for k, v in m.items() if k.startswith("vm_data_size_bytes{") and "storage/" in k)
    sizing = {
        "exporter_series_per_node": exporter_series,
        "central_series_per_node": per_node,
        "scrape_interval_s": interval,
        "ingest_samples_per_s_measured": round(rate, 1),
        "ingest_samples_per_s_expected": round(expected, 1),
        "stored_rows": stored_rows,
        "stored_bytes": stored_bytes,
        "bytes_per_sample": round(stored_bytes / stored_rows, 3) if stored_rows else None,
        "storage_dir_bytes": vm.disk_bytes(),
    }
    (artifacts / "classroom-sizing.json").write_text(json.dumps(sizing, indent=2))
    print("classroom sizing:", json.dumps(sizing))


def test_agent_config_is_valid_for_promtool(tmp_path: Path) -> None:
    """The rendered agent config passes `promtool check config --agent`, and bad input is refused."""
    agent_config = agent_config_module()
    out = tmp_path / "agent.yml"
    out.write_text(
        agent_config.render_agent_config(learner="alice", node="lab-01", central_url="http://10.0.0.5:8428")
    )
    r = subprocess.run(
        ["promtool", "check", "config", "--agent", str(out)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = yaml.safe_load(out.read_text())
    assert cfg["global"]["external_labels"] == {"learner": "alice", "classroom": "default"}
    assert {j["job_name"] for j in cfg["scrape_configs"]} == {"host", "ebpf", "demo", "federate"}
    assert all(sc["static_configs"][0]["labels"]["instance"] == "lab-01" for sc in cfg["scrape_configs"]), (
        "every target must carry the node name as instance"
    )
    assert cfg["remote_write"][0]["url"] == "http://10.0.0.5:8428/api/v1/write"
    for bad in (["--learner", "a b"], ["--central", "ftp://x"], ["--job", "nohostport"]):
        args = ["--learner", "alice", "--node", "lab-01", "--central", "http://x:8428", *bad]
        r = subprocess.run(
            [sys.executable, str(DEPLOY_DIR / "classroom" / "agent_config.py"), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 2, (bad, r.stderr)
        assert r.stderr.strip()


def test_fleet_dashboard_shape() -> None:
    dash = load_fleet()
    assert dash["uid"] == "obslab-fleet"
    names = [t["name"] for t in dash["templating"]["list"]]
    assert names[:2] == ["datasource", "learner"]
    queries = fleet_queries(dash, {"learner": ".*", "__rate_interval": "1m"})
    for title, expr in queries:
        assert "$" not in expr, (title, expr)
    for _title, expr in fleet_queries(dash, None):
        if re.search(r"\brate\(|\bincrease\(", expr):
            assert "$__rate_interval" in expr, expr
        assert 'learner=~"$learner"' in expr, expr
    built = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "fleet.json"
    if built.exists():  # DASH's `obslab dashboards build` writes it; when present it must be current
        assert json.loads(built.read_text())["uid"] == "obslab-fleet"
    assert FLEET_PATH.exists()
