"""End to end on the fixture tree: the real exporter command, its output diffed with a golden file, every
collector succeeding, and promtool linting the whole exported surface."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import require_binary

from .hosttools import collector_states, compare_golden, fixture_args, run_exporter, samples

EXPECTED_COLLECTORS = {
    "build_info",
    "cgroups",
    "cpu",
    "diskstats",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "netstat",
    "pressure",
    "process",
    "processes",
    "sockets",
    "stat",
    "vmstat",
}


@pytest.fixture(scope="module")
def v1_output() -> str:
    result = run_exporter("--once", *fixture_args("sys"))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_golden_v1_hybrid(v1_output: str) -> None:
    compare_golden("host-v1-hybrid.prom", v1_output)


def test_every_collector_succeeds_on_fixture(v1_output: str) -> None:
    states = collector_states(v1_output)
    assert set(states) >= EXPECTED_COLLECTORS
    failed = {name: s for name, s in states.items() if s != (1.0, 0.0)}
    assert not failed, f"collectors not reporting success 1 / no_data 0: {failed}"


def test_fixture_values_are_read_not_invented(v1_output: str) -> None:
    s = samples(v1_output)
    # Spot checks against the fixture files themselves (not against constants in this test).
    from .hosttools import FIXTURES

    meminfo = (FIXTURES / "proc" / "meminfo").read_text().splitlines()[0].split()
    assert s["obslab_memory_total_bytes"] == int(meminfo[1]) * 1024
    cpu0 = (FIXTURES / "proc" / "stat").read_text().splitlines()[1].split()
    assert cpu0[0] == "cpu0"
    assert s['obslab_cpu_seconds_total{cpu="0",mode="idle"}'] == int(cpu0[4]) / 100
    # The synthetic throttled v1 lab cgroup.
    assert s['obslab_cgroup_cpu_throttled_seconds_total{cgroup="/obslab/cpu-lab"}'] == 4.5
    assert s['obslab_cgroup_cpu_limit_cores{cgroup="/obslab/cpu-lab"}'] == 0.5
    assert s['obslab_cgroup_memory_oom_kills_total{cgroup="/obslab/cpu-lab"}'] == 2
    assert s['obslab_cgroup_hierarchy_info{mode="hybrid"}'] == 1
    # The cgroup only in the memory hierarchy still exports its CPU series, at 0.
    assert s['obslab_cgroup_cpu_usage_seconds_total{cgroup="/process_api"}'] == 0
    # Escaped, read-only mount point.
    key = 'obslab_filesystem_readonly{device="tmpfs",fstype="tmpfs",mountpoint="/srv/lab data"}'
    assert s[key] == 1
    assert s['obslab_filesystem_size_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"}'] > 0
    # Processes: as many as process directories in the fixture.
    procs = [p for p in (FIXTURES / "proc").iterdir() if p.name.isdigit()]
    assert sum(v for k, v in s.items() if k.startswith("obslab_processes{")) == len(procs)
    assert sum(v for k, v in s.items() if k.startswith("obslab_process_instances{")) == len(procs)


def test_golden_v2_cgroups() -> None:
    result = run_exporter(
        "--once", "--collector.disable-defaults", "--collector.cgroups", *fixture_args("sys-v2")
    )
    assert result.returncode == 0, result.stderr
    compare_golden("cgroups-v2.prom", result.stdout)
    s = samples(result.stdout)
    assert s['obslab_cgroup_hierarchy_info{mode="v2"}'] == 1
    assert s['obslab_cgroup_memory_oom_kills_total{cgroup="/obslab/mem-lab"}'] == 3
    assert s['obslab_cgroup_memory_limit_bytes{cgroup="/obslab/mem-lab"}'] == 268435456
    assert s['obslab_cgroup_pressure_cpu_waiting_seconds_total{cgroup="/obslab/cpu-lab"}'] == 12.5
    assert s['obslab_cgroup_pressure_memory_stalled_seconds_total{cgroup="/obslab/mem-lab"}'] == 2.9
    # init.scope has no memory files in the fixture: still exported, at 0.
    assert s['obslab_cgroup_memory_usage_bytes{cgroup="/init.scope"}'] == 0


def test_promtool_check_metrics_clean(v1_output: str) -> None:
    promtool = require_binary("promtool")
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=v1_output, capture_output=True, text=True, timeout=60
    )
    assert lint.returncode == 0 and not lint.stdout.strip() and "error" not in lint.stderr.lower(), (
        lint.stdout + lint.stderr
    )


def test_promtool_check_metrics_live() -> None:
    promtool = require_binary("promtool")
    result = run_exporter("--once")
    assert result.returncode == 0, result.stderr
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=result.stdout, capture_output=True, text=True, timeout=60
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
