"""The host exporter against the real machine: a real Prometheus scrapes it, node_exporter agrees with it,
it survives a fork/exit churn, and real v1 cgroups (made here, named obslabtest-host-*) show up."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from obslab import procs
from obslab.procs import OBSLAB
from obslab.prom import ScrapeJob
from tests.conftest import require_binary, requires_root

from .hosttools import samples

EXPORTER = [*OBSLAB, "exporter", "host"]


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200
        return samples(r.read().decode())


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = procs.free_port()
    log = tmp_path_factory.mktemp("host") / "exporter.log"
    proc = procs.spawn("host-exporter-test", [*EXPORTER, "--listen", f"127.0.0.1:{port}"], log)
    try:
        assert procs.wait_http(f"http://127.0.0.1:{port}/-/healthy", timeout=30, proc=proc), procs.tail(log)
        yield f"127.0.0.1:{port}"
    finally:
        procs.stop(proc)


@pytest.fixture(scope="module")
def node_exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary("prometheus-node-exporter")
    port = procs.free_port()
    log = tmp_path_factory.mktemp("node") / "node.log"
    argv = [
        binary,
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        *(f"--collector.{c}" for c in ("cpu", "meminfo", "netdev", "netstat", "vmstat")),
    ]
    proc = procs.spawn("node-exporter-test", argv, log)
    try:
        assert procs.wait_http(f"http://127.0.0.1:{port}/metrics", timeout=30, proc=proc), procs.tail(log)
        yield f"127.0.0.1:{port}"
    finally:
        procs.stop(proc)


def test_prometheus_scrapes_and_promql_answers(exporter: str, make_prometheus) -> None:
    prom = make_prometheus([ScrapeJob("host", [exporter])], scrape_interval="1s")
    client = prom.client
    client.wait_targets_up(timeout=60)
    # Every collector succeeds on the live machine.
    result = client.wait_for('count(obslab_scrape_collector_success{job="host"} == 1) >= 15', timeout=60)
    assert result
    assert not client.query('obslab_scrape_collector_success{job="host"} == 0')
    # The required families, queried the way the dashboards do.
    for expr in (
        'sum by (mode) (rate(obslab_cpu_seconds_total{job="host"}[5s]))',
        "obslab_memory_available_bytes / obslab_memory_total_bytes",
        "obslab_load1",
        "rate(obslab_pressure_cpu_waiting_seconds_total[5s])",
        "obslab_vmstat_oom_kill_total",
        'rate(obslab_disk_io_time_seconds_total{device="vda"}[5s])',
        'obslab_filesystem_avail_bytes{mountpoint="/"}',
        'rate(obslab_network_receive_bytes_total{device="lo"}[5s])',
        "obslab_tcp_retransmitted_segments_total",
        'obslab_tcp_connections{state="listen"}',
        'obslab_processes{state="running"}',
        "topk(5, rate(obslab_process_cpu_seconds_total[5s]))",
        'obslab_cgroup_hierarchy_info{mode="hybrid"}',
        'obslab_build_info{version!=""}',
    ):
        assert client.wait_for(expr, timeout=30), expr
    modes = {r["metric"]["mode"] for r in client.query("sum by (mode) (rate(obslab_cpu_seconds_total[5s]))")}
    assert {"user", "system", "idle", "iowait", "steal"} <= modes
    # The scraping Prometheus itself shows up as a named process.
    assert client.wait_for('obslab_process_instances{name="prometheus"} >= 1', timeout=30)


def test_agrees_with_node_exporter(exporter: str, node_exporter: str) -> None:
    """Counters read as ours-before ≤ node ≤ ours-after (a sandwich: no tolerance needed for monotonic
    counters read at the same moment); memory total is equal."""
    ours, node = f"http://{exporter}/metrics", f"http://{node_exporter}/metrics"
    pairs: list[tuple[str, str]] = [
        ("obslab_vmstat_oom_kill_total", "node_vmstat_oom_kill"),
        ("obslab_tcp_retransmitted_segments_total", "node_netstat_Tcp_RetransSegs"),
    ]
    for _attempt in range(5):
        before = _scrape(ours)
        middle = _scrape(node)
        after = _scrape(ours)
        assert before["obslab_memory_total_bytes"] == middle["node_memory_MemTotal_bytes"]
        checked = 0
        mismatches = []
        for key in middle:
            m = re.fullmatch(r'node_cpu_seconds_total\{cpu="(\d+)",mode="(\w+)"\}', key)
            if m:
                pairs.append((f'obslab_cpu_seconds_total{{cpu="{m.group(1)}",mode="{m.group(2)}"}}', key))
            m = re.fullmatch(r'node_network_(receive|transmit)_bytes_total\{device="([^"]+)"\}', key)
            if m:
                pairs.append((f'obslab_network_{m.group(1)}_bytes_total{{device="{m.group(2)}"}}', key))
        for ours_key, node_key in pairs:
            lo, mid, hi = before[ours_key], middle[node_key], after[ours_key]
            checked += 1
            # CPU seconds: node divides the same USER_HZ ticks; allow float rounding only.
            if not (lo - 1e-6 <= mid <= hi + 1e-6):
                mismatches.append((ours_key, lo, mid, hi))
        assert checked >= 2 + 8 * os.cpu_count() // 2
        if not mismatches:
            break
        pairs = pairs[:2]
    assert not mismatches, mismatches


def test_fork_exit_churn_200_scrapes_never_fail(exporter: str, tmp_path: Path) -> None:
    churn_code = (
        "import os, time\n"
        "end = time.monotonic() + 120\n"  # bounded: stops by itself even if the test dies
        "while time.monotonic() < end:\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
    )
    churners = [
        procs.spawn(f"churn{i}", [sys.executable, "-c", churn_code], tmp_path / f"churn{i}.log")
        for i in range(2)
    ]
    forks_before = _scrape(f"http://{exporter}/metrics")["obslab_forks_total"]
    failures = []
    try:
        for i in range(200):
            try:
                s = _scrape(f"http://{exporter}/metrics")
            except Exception as e:
                failures.append((i, repr(e)))
                continue
            bad = {k: v for k, v in s.items() if k.startswith("obslab_scrape_collector_success") and v != 1}
            if bad:
                failures.append((i, bad))
        forks_after = s["obslab_forks_total"]
    finally:
        for c in churners:
            procs.stop(c)
    assert not failures, failures[:5]
    assert forks_after - forks_before > 200, "the churn did not run"


def _write(path: Path, text: str) -> None:
    path.write_text(text)


@requires_root
def test_real_v1_cgroup_throttling_and_limit(exporter: str) -> None:
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():
        pytest.skip("this machine runs pure cgroup v2; v2 is covered by the fixture test")
    name = f"obslabtest-host-{os.getpid()}"
    dirs = {c: base / c / name for c in ("cpu", "cpuacct", "memory")}
    made = []
    worker = None
    try:
        for d in dirs.values():
            d.mkdir()
            made.append(d)
        _write(dirs["cpu"] / "cpu.cfs_period_us", "100000")
        _write(dirs["cpu"] / "cpu.cfs_quota_us", "10000")  # 0.1 core
        _write(dirs["memory"] / "memory.limit_in_bytes", str(256 << 20))
        # A busy loop that joins the cgroup itself (so nothing else is ever moved), bounded to 20 s.
        code = (
            "import os, time\n"
            f"for c in {[str(d) for d in dirs.values()]!r}:\n"
            "    open(c + '/cgroup.procs', 'w').write(str(os.getpid()))\n"
            "blob = b'x' * (16 << 20)\n"  # charged to the cgroup: v1 does not move charges of earlier pages
            "end = time.monotonic() + 20\n"
            "while time.monotonic() < end:\n"
            "    pass\n"
        )
        worker = procs.spawn("cgroup-burner", [sys.executable, "-c", code], Path(f"/tmp/{name}.log"))
        key = f'{{cgroup="/{name}"}}'
        deadline = time.monotonic() + 30
        while True:
            s = _scrape(f"http://{exporter}/metrics")
            if s.get(f"obslab_cgroup_cpu_throttled_periods_total{key}", 0) > 5:
                break
            assert time.monotonic() < deadline, {k: v for k, v in s.items() if name in k}
            time.sleep(0.5)
        assert s[f"obslab_cgroup_cpu_limit_cores{key}"] == pytest.approx(0.1)
        assert s[f"obslab_cgroup_memory_limit_bytes{key}"] == 256 << 20
        assert s[f"obslab_cgroup_cpu_usage_seconds_total{key}"] > 0
        assert s[f"obslab_cgroup_cpu_throttled_seconds_total{key}"] > 0
        assert s[f"obslab_cgroup_memory_usage_bytes{key}"] >= 16 << 20
    finally:
        if worker is not None:
            procs.stop(worker)
        for d in reversed(made):
            for _ in range(50):  # the killed task leaves the cgroup asynchronously
                with contextlib.suppress(OSError):
                    d.rmdir()
                    break
                time.sleep(0.1)
        with contextlib.suppress(OSError):
            os.unlink(f"/tmp/{name}.log")


def test_concurrent_scrapes(exporter: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _scrape(f"http://{exporter}/metrics"), range(12)))
    for s in results:
        assert all(v == 1 for k, v in s.items() if k.startswith("obslab_scrape_collector_success"))
