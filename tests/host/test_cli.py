"""The `obslab exporter host` command line: flags from the registry, usage errors, a taken port, serving
over HTTP, a failing collector isolated, and a third-party collector plugin installed for real."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from obslab import procs
from obslab.paths import REPO_ROOT
from obslab.procs import OBSLAB

from .hosttools import FIXTURES, collector_states, fixture_args, run_exporter, samples


def test_help_lists_generated_collector_flags() -> None:
    result = run_exporter("--help")
    assert result.returncode == 0
    for name in ("cpu", "pressure", "process", "cgroups"):
        assert f"--collector.{name} / --no-collector.{name}" in result.stdout


def test_unknown_collector_is_usage_error_listing_known_ones() -> None:
    for flag in ("--collector.nosuch", "--no-collector.nosuch"):
        result = run_exporter("--once", flag)
        assert result.returncode == 2
        assert "unknown collector 'nosuch'" in result.stderr
        assert "cpu" in result.stderr and "meminfo" in result.stderr


def test_bad_listen_is_usage_error() -> None:
    result = run_exporter("--listen", "nonsense")
    assert result.returncode == 2 and "HOST:PORT" in result.stderr


def test_port_in_use_is_one_line_exit_3() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_exporter("--listen", f"127.0.0.1:{port}")
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "already in use" in lines[0], result.stderr


def test_disable_defaults_and_explicit_flags() -> None:
    result = run_exporter("--once", "--collector.disable-defaults", "--collector.loadavg", *fixture_args())
    assert set(collector_states(result.stdout)) == {"loadavg"}
    result = run_exporter("--once", "--no-collector.process", "--no-collector.cgroups", *fixture_args())
    states = collector_states(result.stdout)
    assert "process" not in states and "cgroups" not in states and "cpu" in states


def test_a_failing_collector_leaves_the_others_served(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", proc)
    (proc / "meminfo").write_text("MemTotal:       garbage kB\n")  # the meminfo parser raises ValueError
    result = run_exporter(
        "--once",
        "--path.procfs",
        str(proc),
        "--path.sysfs",
        str(FIXTURES / "sys"),
        "--path.rootfs",
        str(FIXTURES / "rootfs"),
    )
    assert result.returncode == 0
    states = collector_states(result.stdout)
    assert states.pop("meminfo") == (0.0, 0.0)
    assert states and all(s == (1.0, 0.0) for s in states.values()), states
    assert "obslab_memory_total_bytes" not in result.stdout
    assert "obslab_cpu_seconds_total" in result.stdout
    assert "collector meminfo failed" in result.stderr


def test_missing_feature_is_quiet_no_data(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", proc)
    shutil.rmtree(proc / "pressure")  # a kernel without PSI
    result = run_exporter(
        "--once",
        "--path.procfs",
        str(proc),
        "--path.sysfs",
        str(FIXTURES / "sys"),
        "--path.rootfs",
        str(FIXTURES / "rootfs"),
    )
    assert collector_states(result.stdout)["pressure"] == (1.0, 1.0)
    assert "pressure" not in result.stderr


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def test_serves_metrics_landing_page_and_4xx(tmp_path: Path) -> None:
    port = procs.free_port()
    argv = [
        *OBSLAB,
        "exporter",
        "host",
        "--listen",
        f"127.0.0.1:{port}",
    ]
    proc = procs.spawn("host-exporter-test", argv, tmp_path / "exporter.log")
    try:
        assert procs.wait_http(f"http://127.0.0.1:{port}/-/healthy", timeout=30, proc=proc), procs.tail(
            proc.log
        )
        status, ctype, body = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "text/html" in ctype and "metrics" in body and "cgroups" in body
        status, ctype, body = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        assert samples(body)['obslab_scrape_collector_success{collector="cpu"}'] == 1
        assert _get(f"http://127.0.0.1:{port}/nope")[0] == 404
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", method="POST", data=b"x")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 405
    finally:
        procs.stop(proc)


def test_plugin_package_adds_a_collector(tmp_path: Path) -> None:
    """Install the example plugin for real (pip, into a target dir) and run the exporter with it."""
    target = tmp_path / "site"
    src = tmp_path / "src"
    shutil.copytree(
        REPO_ROOT / "examples" / "obslab-collector-example", src
    )  # pip builds in place: keep the repo clean
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    env = {"PYTHONPATH": str(target)}
    assert "--collector.example_uptime" in run_exporter("--help", env=env).stdout
    result = run_exporter(
        "--once", "--collector.disable-defaults", "--collector.example_uptime", *fixture_args(), env=env
    )
    assert result.returncode == 0, result.stderr
    uptime = float((FIXTURES / "proc" / "uptime").read_text().split()[0])
    s = samples(result.stdout)
    assert s["obslab_example_uptime_seconds"] == uptime
    assert s['obslab_scrape_collector_success{collector="example_uptime"}'] == 1
    # Without the plugin on the path, the flag does not exist.
    assert run_exporter("--once", "--collector.example_uptime").returncode == 2
