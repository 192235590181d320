"""`obslab up | status | down` for real: every component on free ports, then nothing left running."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from stackenv import run_obslab, stack_env

from obslab import procs, stack
from obslab.prom import RULES_DIR, PromClient

REQUIRED = ("host", "demo", "alertmanager", "prometheus", "console")


def _status(env: dict[str, str]) -> tuple[int, dict]:
    res = run_obslab(env, "status", "--json", timeout=60)
    return res.returncode, json.loads(res.stdout)["components"]


def _bearer_json(url: str, token: str, path: str) -> dict:
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200, path
        return json.load(r)


def _session_members(sid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                data = (d / "stat").read_bytes()
            except OSError:
                continue
            rest = data[data.rindex(b")") + 2 :].split()
            if int(rest[3]) == sid and rest[0] != b"Z":
                out.append(int(d.name))
    return out


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0, reason="the demo service builds cgroups and a network namespace: root only"
)
def test_up_status_down_for_real(isolated_stack: dict[str, str]) -> None:
    env = isolated_stack
    res = run_obslab(env, "up")
    assert res.returncode == 0, res.stderr
    port = env["OBSLAB_CONSOLE_PORT"]
    assert f"console: http://127.0.0.1:{port}/?token=" in res.stdout
    token = res.stdout.split("?token=")[1].split()[0]
    assert len(token) >= 16

    rc, comps = _status(env)
    assert rc == 0
    assert set(comps) == set(stack.COMPONENTS)
    for name in REQUIRED:
        assert comps[name]["healthy"] is True, (name, comps[name])
        assert isinstance(comps[name]["pid"], int)
    # eBPF runs where the machine allows it; otherwise `up` said why in one line.
    why = stack.ebpf_unavailable()
    if why is None:
        assert comps["ebpf"]["healthy"] is True
    else:
        assert why in res.stderr.replace("\n", " ") or "ebpf not started" in res.stderr
    if not comps["grafana"]["running"]:
        assert "grafana" in res.stderr and "not started" in res.stderr
    assert comps["console"]["login_url"].endswith(f"?token={token}")

    # Prometheus scrapes every running component at 5 s and loaded every rule file.
    prom = PromClient(comps["prometheus"]["url"])
    prom.wait_targets_up(timeout=90)
    jobs = {t["labels"]["job"] for t in prom.targets()}
    expected = {"host", "demo", "alertmanager", "prometheus"} | (
        {"ebpf"} if comps["ebpf"]["running"] else set()
    )
    assert jobs == expected
    assert {t["scrapeInterval"] for t in prom.targets()} == {"5s"}
    loaded = {g["name"] for g in prom.rules()}
    for rule_file in RULES_DIR.glob("*.yml"):
        for group in yaml.safe_load(rule_file.read_text())["groups"]:
            assert group["name"] in loaded, (rule_file.name, group["name"])
    with urllib.request.urlopen(comps["prometheus"]["url"] + "/api/v1/alertmanagers", timeout=10) as r:
        ams = json.load(r)["data"]["activeAlertmanagers"]
    assert [a["url"] for a in ams] == [comps["alertmanager"]["url"] + "/api/v2/alerts"]
    # The console answers with the token only.
    req = urllib.request.Request(
        comps["console"]["url"] + "/api/labs", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and isinstance(json.load(r), list)

    # Every panel of the dashboards the console draws runs against this Prometheus (no 4xx/5xx).
    for uid in ("obslab-lab", "obslab-use"):
        panels = _bearer_json(comps["console"]["url"], token, f"/api/dashboards/{uid}/panels")["panels"]
        assert panels, uid
        for panel in panels:
            data = _bearer_json(
                comps["console"]["url"], token, f"/api/dashboards/{uid}/panels/{panel['id']}/data?minutes=5"
            )
            assert len(data["timestamps"]) > 1

    # Idempotent: a second `up` keeps every healthy component (same PIDs) and prints the same token.
    res2 = run_obslab(env, "up")
    assert res2.returncode == 0, res2.stderr
    assert f"?token={token}" in res2.stdout
    rc, comps2 = _status(env)
    assert {n: c["pid"] for n, c in comps2.items()} == {n: c["pid"] for n, c in comps.items()}

    pids = {n: c["pid"] for n, c in comps.items() if c["pid"]}
    res3 = run_obslab(env, "down", timeout=180)
    assert res3.returncode == 0, res3.stderr
    assert "the stack is down" in res3.stderr
    for name, pid in pids.items():
        assert procs.proc_starttime(pid) is None, f"{name} (pid {pid}) still runs"
        assert _session_members(pid) == [], f"{name} left processes behind"
    for name in stack.COMPONENTS:
        assert not procs.port_in_use(
            "127.0.0.1", int(env[f"OBSLAB_{stack.COMPONENTS[name].port_key.upper()}_PORT"])
        )
    rc, comps3 = _status(env)
    assert rc == 1
    assert not any(c["running"] or c["healthy"] for c in comps3.values())
    assert not list((Path(env["OBSLAB_STATE_DIR"]) / "stack").glob("*.json"))


def test_port_in_use_names_port_and_component(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "state")
    port = int(env["OBSLAB_PROMETHEUS_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        res = run_obslab(env, "up", "--skip", "ebpf", "--skip", "demo", timeout=120)
    try:
        assert res.returncode == 3, res.stderr
        assert f"port {port} (prometheus" in res.stderr
        assert "OBSLAB_PROMETHEUS_PORT" in res.stderr
        # Nothing was started.
        assert not list((tmp_path / "state" / "stack").glob("*.json"))
    finally:
        run_obslab(env, "down")


def test_component_that_dies_at_start_shows_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = stack_env(tmp_path / "state")
    for key, value in env.items():
        if key.startswith("OBSLAB_"):
            monkeypatch.setenv(key, value)

    def broken(ctx: stack.StackContext) -> stack.Launch:
        return stack.Launch(["/bin/sh", "-c", "echo 'bad flag --frobnicate' >&2; exit 7"])

    monkeypatch.setitem(
        stack.COMPONENTS,
        "broken",
        stack.Component("broken", "grafana", "/", True, 10.0, 5.0, broken),
    )
    skip = tuple(n for n in stack.COMPONENTS if n != "broken")
    outcomes = stack.bring_up(skip)
    assert outcomes["broken"].state == "failed"
    assert "exited" in outcomes["broken"].note
    assert "bad flag --frobnicate" in outcomes["broken"].note
    assert not stack.COMPONENTS["broken"].record.exists()


def test_prometheus_config_is_valid_for_promtool(tmp_path: Path) -> None:
    text = stack.prometheus_config(list(stack.COMPONENTS.values()))
    cfg = yaml.safe_load(text)
    assert cfg["global"] == {"scrape_interval": "5s", "evaluation_interval": "5s"}
    assert [j["job_name"] for j in cfg["scrape_configs"]] == [
        "host",
        "ebpf",
        "demo",
        "alertmanager",
        "prometheus",
    ]
    assert sorted(cfg["rule_files"]) == sorted(str(p) for p in RULES_DIR.glob("*.y*ml"))
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    res = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_alertmanager_config_is_valid_and_local_only() -> None:
    res = subprocess.run(
        ["amtool", "check-config", str(stack.ALERTMANAGER_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    cfg = yaml.safe_load(stack.ALERTMANAGER_CONFIG.read_text())
    # No external receivers: every receiver has nothing but its name.
    assert all(set(r) == {"name"} for r in cfg["receivers"])


def test_token_is_saved_private_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSLAB_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("OBSLAB_TOKEN", raising=False)
    assert stack.console_token() is None
    token = stack.console_token(create=True)
    assert token and stack.console_token() == token
    assert os.stat(stack.token_file()).st_mode & 0o777 == 0o600
    monkeypatch.setenv("OBSLAB_TOKEN", "x" * 20)
    assert stack.console_token() == "x" * 20


def test_status_without_a_stack_exits_1(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "state")
    res = run_obslab(env, "status")
    assert res.returncode == 1
    assert "not running" in res.stderr


def test_grafana_code_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Grafana is not installable here: its launch is checked against a stand-in binary and home."""
    monkeypatch.setenv("OBSLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(stack, "find_binary", lambda name, extra=(): None)
    ctx = stack.StackContext(token="t" * 20, dir=stack.stack_dir())
    why = stack.COMPONENTS["grafana"].prepare(ctx)
    assert isinstance(why, str) and "grafana-server is not on PATH" in why

    home = tmp_path / "share" / "grafana"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "defaults.ini").write_text("")
    binary = tmp_path / "bin" / "grafana-server"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setattr(
        stack, "find_binary", lambda name, extra=(): str(binary) if name == "grafana-server" else None
    )
    launch = stack.COMPONENTS["grafana"].prepare(ctx)
    assert isinstance(launch, stack.Launch)
    assert launch.argv == [str(binary), f"--homepath={home}"]
    # The provisioning files expand these variables (deploy/grafana/provisioning/*/obslab.yaml).
    for path in stack.GRAFANA_PROVISIONING.rglob("*.yaml"):
        for var in re.findall(r"\$\{(\w+)\}", path.read_text()):
            assert var in launch.env, (path.name, var)
    assert launch.env["GF_PATHS_PROVISIONING"] == str(stack.GRAFANA_PROVISIONING)
    assert launch.env["OBSLAB_PROMETHEUS_URL"] == stack.COMPONENTS["prometheus"].url
    assert launch.env["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
