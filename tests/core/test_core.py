"""The shared core: listen parsing, ports, process supervision and the Prometheus helper."""

from __future__ import annotations

import os
import sys
import time

import pytest
from click.testing import CliRunner

from obslab import procs
from obslab.cli import cli
from obslab.config import parse_listen, port
from obslab.errors import UsageError
from obslab.prom import ScrapeJob


def test_parse_listen_forms() -> None:
    assert str(parse_listen("127.0.0.1:19100")) == "127.0.0.1:19100"
    assert parse_listen(":80").host == "0.0.0.0"
    assert parse_listen("[::1]:9").host == "::1"
    for bad in ("nohostport", "127.0.0.1:abc", "127.0.0.1:0", "127.0.0.1:70000"):
        with pytest.raises(UsageError):
            parse_listen(bad)


def test_port_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    assert port("prometheus") == 19090
    monkeypatch.setenv("OBSLAB_PROMETHEUS_PORT", "29090")
    assert port("prometheus") == 29090
    monkeypatch.setenv("OBSLAB_PROMETHEUS_PORT", "x")
    with pytest.raises(UsageError):
        port("prometheus")


def test_spawn_and_stop_by_pid(tmp_path) -> None:
    rec = tmp_path / "sleeper.json"
    proc = procs.spawn(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log", record=rec
    )
    assert proc.alive()
    loaded = procs.Proc.load(rec)
    assert loaded is not None and loaded.pid == proc.pid
    assert procs.stop(loaded, timeout=5)
    assert not proc.alive()
    # A record whose start time does not match (a reused PID) is never signalled.
    fake = procs.Proc("other", proc.pid, proc.starttime + 1, [], "")
    assert not procs.stop(fake)


def test_unknown_command_is_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2


def test_real_prometheus_scrapes_itself(make_prometheus) -> None:
    # The fixture starts Debian's Prometheus; scrape its own /metrics to prove the plumbing end to end.
    prom = make_prometheus([])
    prom.reload(
        prom.config_text.replace(
            "scrape_configs: []",
            f"scrape_configs:\n- job_name: self\n  static_configs:\n  - targets: ['127.0.0.1:{prom.port}']",
        )
    )
    result = prom.client.wait_for('up{job="self"} == 1', timeout=30)
    assert result[0]["metric"]["job"] == "self"
    assert procs.port_in_use("127.0.0.1", prom.port)
    prom.stop()
    assert not procs.port_in_use("127.0.0.1", prom.port)


def test_render_config_has_jobs_and_rules() -> None:
    from obslab.prom import render_config

    text = render_config(
        [ScrapeJob("host", ["127.0.0.1:19100"], labels={"role": "lab"})], rule_files=["r.yml"]
    )
    assert "job_name: host" in text and "r.yml" in text and "role: lab" in text


def test_exited_child_is_reaped_not_left_a_zombie(tmp_path) -> None:
    proc = procs.spawn("quick", [sys.executable, "-c", "pass"], tmp_path / "q.log")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.alive():
        time.sleep(0.05)
    assert not proc.alive()
    # alive() reaped it: /proc/PID is gone rather than a zombie entry.
    assert not os.path.exists(f"/proc/{proc.pid}/stat")
