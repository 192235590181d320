"""Classroom files: per-learner user-data, the agent unit, the instructor's provisioning, and basic auth for real."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploytools import AgentServer, VictoriaMetrics, agent_config_module, load_fleet, start_host_exporter

from obslab import procs
from obslab.paths import DEPLOY_DIR

CLASSROOM = DEPLOY_DIR / "classroom"
GENERATOR = CLASSROOM / "classroom_vms.py"


def _generate(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *extra, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_user_data_per_learner(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    r = _generate(
        tmp_path,
        str(CLASSROOM / "roster.example.csv"),
        "--central",
        "http://10.0.0.5:8428",
        "--central-password-file",
        str(pw),
        "--classroom",
        "sre-101",
    )
    assert r.returncode == 0, r.stderr
    outputs = sorted((tmp_path / "out").glob("*.user-data.yaml"))
    assert [p.name for p in outputs] == [f"lab-0{i}.user-data.yaml" for i in (1, 2, 3)]
    for path in outputs:
        text = path.read_text()
        assert text.startswith("#cloud-config\n")
        ud: dict[str, Any] = yaml.safe_load(text)
        assert ud["hostname"] == path.name.split(".")[0]
        files = {f["path"]: f for f in ud["write_files"]}
        assert files["/etc/obslab/classroom-password"] == {
            "path": "/etc/obslab/classroom-password",
            "permissions": "0600",
            "content": "s3cret",
        }
        agent = tmp_path / "agent.yml"
        agent.write_text(files["/etc/obslab/classroom-agent.yml"]["content"])
        cfg = yaml.safe_load(agent.read_text())
        assert cfg["global"]["external_labels"]["classroom"] == "sre-101"
        assert cfg["remote_write"][0]["basic_auth"]["password_file"].startswith("/run/credentials/")
        r = subprocess.run(
            ["promtool", "check", "config", "--agent", str(agent)], capture_output=True, text=True
        )
        assert r.returncode == 0, r.stdout + r.stderr
        unit = files["/etc/systemd/system/obslab-classroom-agent.service"]["content"]
        assert unit == (CLASSROOM / "obslab-classroom-agent.service").read_text()
        assert ["systemctl", "enable", "--now", "obslab-classroom-agent.service"] in ud["runcmd"]
        if shutil.which("cloud-init"):
            r = subprocess.run(
                ["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True
            )
            assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    "roster",
    ["", "learner,node\n", "alice\n", "alice,lab-01\nbob,lab-01\n", "a b,lab-01\n"],
    ids=["empty", "header-only", "one-column", "duplicate-node", "bad-label"],
)
def test_bad_roster_is_exit_2(tmp_path: Path, roster: str) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(roster)
    r = _generate(tmp_path, str(path), "--central", "http://x:8428")
    assert r.returncode == 2 and "classroom_vms:" in r.stderr, r.stderr


def test_agent_unit_verifies(tmp_path: Path) -> None:
    unit = CLASSROOM / "obslab-classroom-agent.service"
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    level = float((r.stdout + r.stderr).rsplit("exposure level for", 1)[1].split(":")[1].split()[0])
    assert level <= 2.5, level


def test_instructor_provisioning_matches_the_fleet_dashboard() -> None:
    prov = CLASSROOM / "instructor" / "grafana" / "provisioning"
    (ds,) = yaml.safe_load((prov / "datasources" / "obslab-classroom.yml").read_text())["datasources"]
    fleet = load_fleet()
    var = next(t for t in fleet["templating"]["list"] if t["name"] == "datasource")
    assert var["current"]["value"] == ds["uid"] == "obslab-classroom"
    assert ds["type"] == "prometheus" and ds["jsonData"]["timeInterval"] == "5s"
    default = (CLASSROOM / "instructor" / "victoria-metrics.default").read_text()
    assert "-httpAuth.username=" + ds["basicAuthUser"] in default
    (provider,) = yaml.safe_load((prov / "dashboards" / "obslab.yml").read_text())["providers"]
    assert provider["type"] == "file"


def _get(url: str, auth: tuple[str, str] | None) -> Any:
    req = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def test_basic_auth_end_to_end(tmp_path: Path) -> None:
    """With -httpAuth on VictoriaMetrics, an agent holding the password writes; anonymous readers are refused."""
    auth = ("obslab", "classroom-test-pw")
    vm = VictoriaMetrics(auth=auth).start()
    exporter, port = start_host_exporter(tmp_path)
    pw = tmp_path / "pw"
    pw.write_text(auth[1])
    agent = None
    try:
        text = agent_config_module().render_agent_config(
            learner="dana",
            node="lab-09",
            central_url=vm.url,
            jobs={"host": f"127.0.0.1:{port}"},
            local_prometheus=None,
            scrape_interval="1s",
            central_user=auth[0],
            central_password_file=str(pw),
        )
        agent = AgentServer(text)
        agent.start()
        query = f"{vm.url}/api/v1/query?" + urllib.parse.urlencode({"query": 'up{learner="dana"}'})
        with pytest.raises(urllib.error.HTTPError) as e:
            _get(query, None)
        assert e.value.code == 401
        deadline = time.monotonic() + 60
        result: list[Any] = []
        while time.monotonic() < deadline and not result:
            result = _get(query, auth)["data"]["result"]
            time.sleep(0.5)
        assert result and result[0]["metric"]["instance"] == "lab-09"
    finally:
        if agent:
            agent.stop()
        procs.stop(exporter)
        vm.stop()
