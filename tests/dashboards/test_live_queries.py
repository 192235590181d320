"""The real proof, since Grafana is not installed here: every panel query against a real Prometheus.

A real Prometheus (with every rule file loaded) scrapes the host exporter, the eBPF exporter (as root)
and the demo service with its load generator (as root: it builds a netns), all started through their
CLIs on free ports, while a small bounded load runs. Every panel query of every dashboard, with the
template variables filled in the way Grafana does on first load (``$job``/``$instance`` = All,
``$__rate_interval`` = 20s), is run as a range query over the last minute, as a Grafana panel would.
Each must be valid PromQL; each must return data unless it is listed in ``MAY_BE_EMPTY`` with the reason.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from obslab.dashboards import build

from obslab import procs
from obslab.prom import RULES_DIR, PromAPIError, PrometheusServer, ScrapeJob, render_config
from tests.conftest import is_root

OBSLAB = str(Path(sys.executable).parent / "obslab")

#: (dashboard uid, panel title) → why its queries may return nothing in a short healthy run.
MAY_BE_EMPTY: dict[tuple[str, str], str] = {
    # Event panels filtered with `> 0`: empty when the event did not happen, which is the healthy case.
    ("obslab-ebpf", "OOM victims"): "no process is OOM-killed during the test",
    ("obslab-processes", "cgroup OOM kills and limit hits"): "no cgroup hits its memory limit or OOMs",
    ("obslab-use", "Collectors failing"): "shows only failing collectors (success == 0); all succeed",
    ("obslab-use", "CPU throttling (cgroup quota)"): "shows only throttled cgroups; none need be throttled",
    ("obslab-lab", "CPU: cgroup throttling"): "shows only throttled cgroups; none need be throttled",
    ("obslab-processes", "CPU throttling by cgroup"): "only cgroups with a quota that were throttled",
    (
        "obslab-processes",
        "Memory by cgroup vs limit",
    ): "only cgroups with a memory limit (the top levels have none)",
    # Event counters whose labelled series appear with the first event.
    ("obslab-ebpf", "TCP retransmits (tracepoint)"): "loopback traffic rarely retransmits",
    ("obslab-ebpf", "Packet drops by reason"): "a drop reason's series appears with its first drop",
    (
        "obslab-ebpf",
        "Direct reclaim stalls",
    ): "no direct reclaim without memory pressure (percentiles are NaN)",
    ("obslab-ebpf", "TCP connect failures"): "no failed outgoing connection is needed",
    ("obslab-ebpf", "TCP connect latency"): "percentiles need an outgoing connection in the window",
}

#: Individual queries (dashboard uid, panel title, substring of the expr) that may be empty.
MAY_BE_EMPTY_QUERY: dict[tuple[str, str, str], str] = {
    (
        "obslab-processes",
        "CPU by cgroup",
        "obslab_cgroup_cpu_limit_cores",
    ): "the quota line: only cgroups with a quota",
    (
        "obslab-use",
        "Disk saturation (queue, latency)",
        "read_time_seconds",
    ): "await is NaN with no completed IO",
}

#: Dashboards whose queries are checked for validity only: they read another data source.
VALID_ONLY = {"obslab-fleet": "reads the classroom's central store, where every series has a `learner` label"}

RATE_INTERVAL = "20s"  # Grafana's $__rate_interval at the stack's 5s scrape interval


CGROUP_V1 = Path("/sys/fs/cgroup")
TEST_CGROUP = "obslabtest-dash"  # a top-level cgroup: the host exporter watches every top level


@contextlib.contextmanager
def throttled_cgroup() -> Iterator[bool]:
    """A busy loop in our own v1 cgroup with a 10% CPU quota and a memory limit, so the cgroup panels
    (throttling, usage vs limit) have a real subject. Yields False where v1 cpu+memory are not mounted."""
    cpu, mem = CGROUP_V1 / "cpu" / TEST_CGROUP, CGROUP_V1 / "memory" / TEST_CGROUP
    if (
        not is_root()
        or not (CGROUP_V1 / "cpu" / "cpu.cfs_quota_us").exists()
        or not (CGROUP_V1 / "memory").is_dir()
    ):
        yield False
        return
    made: list[Path] = []
    loop = None
    try:
        for d in (cpu, mem):
            d.mkdir(exist_ok=True)
            made.append(d)
        (cpu / "cpu.cfs_period_us").write_text("100000")
        (cpu / "cpu.cfs_quota_us").write_text("10000")
        (mem / "memory.limit_in_bytes").write_text(str(256 * 2**20))
        loop = subprocess.Popen(["timeout", "120", "sh", "-c", "while :; do :; done"])
        time.sleep(0.2)  # timeout forks sh: move both (the loop runs in sh)
        pids = [str(loop.pid), *Path(f"/proc/{loop.pid}/task/{loop.pid}/children").read_text().split()]
        for pid in pids:
            for d in (cpu, mem):
                (d / "cgroup.procs").write_text(pid)
        yield True
    finally:
        if loop is not None:
            loop.terminate()  # timeout forwards SIGTERM to the loop
            loop.wait(timeout=10)
        for d in made:
            for _ in range(50):  # the cgroup empties once the loop's exit is reaped
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def _obslab(*args: str) -> list[str]:
    return [OBSLAB, *args]


def _start(name: str, argv: list[str], url: str, logdir: Path, timeout: float) -> procs.Proc:
    proc = procs.spawn(name, argv, logdir / f"{name}.log")
    if not procs.wait_http(url, timeout=timeout, proc=proc):
        log = procs.tail(proc.log, 40)
        procs.stop(proc)
        pytest.fail(f"{name} did not serve {url} within {timeout:.0f}s:\n{log}")
    return proc


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    logdir = tmp_path_factory.mktemp("dash-live")
    started: list[procs.Proc] = []
    jobs: list[ScrapeJob] = []
    with contextlib.ExitStack() as stack:
        has_cgroup = stack.enter_context(throttled_cgroup())
        yield from _live(logdir, started, jobs, has_cgroup)


def _live(
    logdir: Path, started: list[procs.Proc], jobs: list[ScrapeJob], has_cgroup: bool
) -> Iterator[PrometheusServer]:
    try:
        host_port = procs.free_port()
        started.append(
            _start(
                "host-exporter",
                _obslab("exporter", "host", "--listen", f"127.0.0.1:{host_port}"),
                f"http://127.0.0.1:{host_port}/metrics",
                logdir,
                60,
            )
        )
        jobs.append(ScrapeJob("host", [f"127.0.0.1:{host_port}"]))
        if is_root():
            ebpf_port = procs.free_port()
            started.append(
                _start(
                    "ebpf-exporter",
                    _obslab("exporter", "ebpf", "--listen", f"127.0.0.1:{ebpf_port}"),
                    f"http://127.0.0.1:{ebpf_port}/metrics",
                    logdir,
                    120,  # bcc compiles the probes first
                )
            )
            jobs.append(ScrapeJob("ebpf", [f"127.0.0.1:{ebpf_port}"]))
            demo_port = procs.free_port()
            started.append(
                _start(
                    "demo",
                    [
                        sys.executable,
                        "-m",
                        "obslab.labs.demo",
                        "run",
                        "--port",
                        str(demo_port),
                        "--max-seconds",
                        "240",
                    ],
                    f"http://127.0.0.1:{demo_port}/metrics",
                    logdir,
                    90,
                )
            )
            jobs.append(ScrapeJob("demo", [f"127.0.0.1:{demo_port}"]))
        rules = sorted(str(p) for p in RULES_DIR.glob("*.yml"))
        prom = PrometheusServer(render_config(jobs, scrape_interval="2s", rule_files=rules)).start()
        try:
            prom.client.wait_targets_up(timeout=60)
            # A little bounded load, so utilisation, disk and scheduler panels move: one CPU worker at
            # 60% and one disk writer, 25 s, in a temp dir (stress-ng stops by itself).
            load = None
            if shutil.which("stress-ng"):
                load = subprocess.Popen(
                    [
                        "stress-ng",
                        "--cpu",
                        "1",
                        "--cpu-load",
                        "60",
                        "--hdd",
                        "1",
                        "--hdd-bytes",
                        "8M",
                        "--timeout",
                        "25s",
                        "--quiet",
                    ],
                    cwd=logdir,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            for _ in range(20):  # a few execs and outgoing connections for the event probes
                subprocess.run(["true"], check=False)
            # Let rates span several scrapes and the recording rules evaluate a few times.
            prom.client.wait_for("instance:obslab_cpu_utilisation:rate30s", timeout=60)
            if is_root():
                prom.client.wait_for("instance:obslab_demo_client_errors:ratio_rate30s", timeout=90)
                prom.client.wait_for("obslab_runqueue_latency_seconds_count > 0", timeout=60)
            if has_cgroup:
                prom.client.wait_for(
                    f'rate(obslab_cgroup_cpu_throttled_periods_total{{cgroup=~".*{TEST_CGROUP}"}}[20s]) > 0',
                    timeout=60,
                )
            time.sleep(20)
            if load is not None:
                load.wait(timeout=60)
            yield prom
        finally:
            prom.stop()
    finally:
        for proc in reversed(started):
            procs.stop(proc, timeout=30)


def _allowed(uid: str, title: str, expr: str) -> str | None:
    if (uid, title) in MAY_BE_EMPTY:
        return MAY_BE_EMPTY[(uid, title)]
    for (u, t, fragment), why in MAY_BE_EMPTY_QUERY.items():
        if u == uid and t == title and fragment in expr:
            return why
    return None


def _has_data(result: list[dict]) -> bool:
    """Grafana draws something if any series has a non-NaN point."""
    return any(v[1] not in ("NaN", "+Inf", "-Inf") for series in result for v in series.get("values", []))


def test_every_panel_query_is_valid_and_returns_data(live: PrometheusServer) -> None:
    client = live.client
    end = time.time()
    invalid: list[str] = []
    unexpected_empty: list[str] = []
    too_few: list[str] = []
    lines = []
    for uid, dash in sorted(build.build_all().items()):
        values = {**build.dashboard_values(dash), "__rate_interval": RATE_INTERVAL}
        total = with_data = allowed_empty = 0
        for title, raw in build.panel_queries(dash):
            expr = build.expand(raw, values)
            total += 1
            try:
                result = client.query_range(expr, end - 60, end, 2)
            except PromAPIError as e:
                invalid.append(f"{uid} / {title}: {e}\n    {expr}")
                continue
            if _has_data(result):
                with_data += 1
            elif uid in VALID_ONLY or _allowed(uid, title, expr):
                allowed_empty += 1
            else:
                unexpected_empty.append(f"{uid} / {title}:\n    {expr}")
        lines.append(
            f"{uid:18} {total:3} queries  {with_data:3} with data  {allowed_empty:3} empty by design"
        )
        if uid not in VALID_ONLY and is_root() and with_data < 0.8 * total:
            too_few.append(f"{uid}: only {with_data}/{total} queries returned data")
    print("\n" + "\n".join(lines))
    print("\n".join(["empty:", *unexpected_empty, *invalid]))
    assert not invalid, "invalid PromQL:\n" + "\n".join(invalid)
    if is_root():  # without root there is no eBPF exporter and no demo: their panels are empty by force
        assert not unexpected_empty, "queries with no data (and not listed in MAY_BE_EMPTY):\n" + "\n".join(
            unexpected_empty
        )
        assert not too_few, too_few


def test_alert_rules_load_and_evaluate(live: PrometheusServer) -> None:
    """Prometheus loaded every rule file and every rule evaluated without error on real series."""
    groups = live.client.rules()
    names = {g["file"].rsplit("/", 1)[-1] for g in groups}
    assert names == {p.name for p in RULES_DIR.glob("*.yml")}
    bad = [
        f"{r['name']}: {r.get('lastError')}"
        for g in groups
        for r in g["rules"]
        if r.get("health") not in ("ok", "unknown")
    ]
    assert not bad, bad
    # The recording rules dashboards use produce series from the real exporters.
    for record in ("instance:obslab_cpu_utilisation:rate30s", "instance:obslab_memory_utilisation:ratio"):
        assert live.client.query(record), f"{record} has no series"
