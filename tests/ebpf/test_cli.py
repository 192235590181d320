"""`obslab exporter ebpf` end to end: --once, serving to a real Prometheus, landing page, exit codes."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from obslab.paths import find_binary
from obslab.procs import OBSLAB, free_port, spawn, stop, wait_http
from obslab.prom import ScrapeJob
from tests.conftest import as_nobody

from .conftest import requires_bpf

PROBE_NAMES = [
    "blockio", "execs", "oom", "reclaim", "runqueue", "skb_drops", "softirq", "syscalls", "tcp_connect",
    "tcp_retransmit",
]  # fmt: skip


def obslab(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OBSLAB, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,  # type: ignore[call-overload]
    )


def test_unknown_probe_is_usage_error() -> None:
    r = obslab("exporter", "ebpf", "--once", "--probe.nosuch")
    assert r.returncode == 2 and "unknown probe 'nosuch'" in r.stderr


def test_window_without_once_is_usage_error() -> None:
    r = obslab("exporter", "ebpf", "--window", "3")
    assert r.returncode == 2 and "--window" in r.stderr


def test_without_privileges_one_line_exit_3() -> None:
    r = subprocess.run(
        [*as_nobody(), *OBSLAB, "exporter", "ebpf", "--once"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 3, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "CAP_BPF" in lines[0] and "root" in lines[0]


@requires_bpf
def test_port_in_use_one_line_exit_3() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = obslab("exporter", "ebpf", "--listen", f"127.0.0.1:{port}", timeout=60)
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "address already in use" in lines[0] and str(port) in lines[0]


@requires_bpf
def test_once_prints_one_valid_exposition() -> None:
    r = obslab("exporter", "ebpf", "--once", "--window", "1", "--no-probe.syscalls")
    assert r.returncode == 0, r.stderr
    families = {f.name: f for f in text_string_to_metric_families(r.stdout)}
    attached = {s.labels["probe"]: s.value for s in families["obslab_ebpf_probe_attached"].samples}
    assert set(attached) == set(PROBE_NAMES) - {"syscalls"} and set(attached.values()) == {1.0}
    assert "obslab_syscalls" not in families
    for name in ("obslab_runqueue_latency_seconds", "obslab_oom_victims", "obslab_process_execs"):
        assert name in families, name
    assert families["obslab_oom_victims"].type == "counter"  # declared before the first OOM
    promtool = find_binary("promtool")
    if promtool:
        lint = subprocess.run([promtool, "check", "metrics"], input=r.stdout, capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr


@requires_bpf
def test_serves_prometheus_and_landing_page(make_prometheus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = spawn(
        "ebpf-exporter",
        [
            *OBSLAB,
            "exporter",
            "ebpf",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        tmp_path / "ebpf.log",
    )
    try:
        assert wait_http(f"http://127.0.0.1:{port}/metrics", timeout=60, proc=proc), Path(
            proc.log
        ).read_text()
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        for name in PROBE_NAMES:
            assert f"<code>{name}</code></td><td>attached" in page, name
        assert "sched:sched_switch" in page
        prom = make_prometheus([ScrapeJob("ebpf", [f"127.0.0.1:{port}"])])
        prom.client.wait_targets_up(timeout=60)
        result = prom.client.wait_for(
            'count(obslab_ebpf_probe_attached{job="ebpf"} == 1)',
            check=lambda r: bool(r) and float(r[0]["value"][1]) == len(PROBE_NAMES),
            timeout=60,
        )
        assert result
        prom.client.wait_for("rate(obslab_syscalls_total[5s]) > 0", timeout=60)
    finally:
        assert stop(proc, timeout=15)
    assert "Traceback" not in Path(proc.log).read_text()
