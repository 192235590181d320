"""`obslab doctor`: the real command on this machine, as root and as an unprivileged user, plus its pure
helpers and the check registry other areas extend."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from obslab import doctor
from obslab.procs import OBSLAB
from tests.conftest import as_nobody, requires_root

CLI = [*OBSLAB, "doctor"]


def _netns() -> str:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    return subprocess.run([ip, "netns", "list"], capture_output=True, text=True, check=False).stdout


@requires_root
def test_doctor_json_as_root() -> None:
    result = subprocess.run([*CLI, "--json"], capture_output=True, text=True, timeout=300)
    findings = json.loads(result.stdout)
    by_name = {f["check"]: f for f in findings}
    essentials = [f for f in findings if f["essential"]]
    assert {f["check"] for f in essentials} == {"privileges", "procfs", "cgroups", "prometheus", "promtool"}
    # Exit code follows the essentials, whatever the machine.
    assert result.returncode == (0 if all(f["ok"] for f in essentials) else 3), result.stderr
    for f in findings:
        assert f["status"] in ("ok", "degraded", "missing")
        assert f["ok"] or f["fix"], f"{f['check']} is not ok but gives no fix"
    for name in (
        "bpf",
        "kernel-headers",
        "tracefs",
        "kprobes",
        "netem",
        "psi",
        "alertmanager",
        "node_exporter",
        "grafana-server",
        "victoria-metrics",
    ):
        assert name in by_name, name
    # One line per eBPF probe, from the EBPF area's contract.
    try:
        from obslab.exporters.ebpf.probes import PROBE_TRACEPOINTS
    except ImportError:
        PROBE_TRACEPOINTS = {}
    for probe in PROBE_TRACEPOINTS:
        assert f"tracepoints:{probe}" in by_name
    # The netem probe cleans its namespace up.
    assert "obslabtest-doctor" not in _netns()


@requires_root
def test_netem_finding_matches_a_direct_tc_attempt() -> None:
    ok, _ = doctor._qdisc_works(["netem", "delay", "1ms"])
    finding = doctor.run_checks(["netem"])[0]
    assert finding.ok == ok
    if not ok:
        assert "netem unavailable" in finding.detail and finding.fix
    assert "obslabtest-doctor" not in _netns()


def test_unprivileged_user_gets_exit_3_and_a_fix(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)  # the unprivileged child writes its state here
    result = subprocess.run(
        [
            *as_nobody(),
            "env",
            f"OBSLAB_STATE_DIR={tmp_path}",
            *CLI,
            "--check",
            "privileges",
            "--check",
            "procfs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "privileges" in result.stderr and "fix: sudo" in result.stdout


def test_unknown_check_is_usage_error() -> None:
    result = subprocess.run([*CLI, "--check", "nosuch"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "known:" in result.stderr


def test_parse_cap_eff_and_headers(tmp_path: Path) -> None:
    assert doctor.parse_cap_eff("Name:\tx\nCapEff:\t000001fffeffffff\n") == 0x000001FFFEFFFFFF
    assert doctor.parse_cap_eff("no caps here") == 0
    exact = tmp_path / "linux-headers-6.1.0-18-amd64"
    exact.mkdir()
    assert doctor.classify_headers("6.1.0-18-amd64", str(exact)) == ("exact", "6.1.0-18-amd64")
    assert doctor.classify_headers("6.18.44-custom", str(exact)) == ("nearest", "6.1.0-18-amd64")
    assert doctor.classify_headers("6.18.44-custom", str(tmp_path / "absent"))[0] == "none"
    assert doctor.classify_headers("6.18.44-custom", None)[0] == "none"


def test_other_areas_add_checks_through_the_registry() -> None:
    @doctor.check("test-contributed", area="labs")
    def _contributed() -> doctor.Finding:
        """a check contributed from another module"""
        return doctor.Finding("test-contributed", False, "something lacks", "do this", area="labs")

    @doctor.check("test-crashing")
    def _crashing() -> doctor.Finding:
        raise RuntimeError("boom")

    try:
        findings = {f.check: f for f in doctor.run_checks(["test-contributed", "test-crashing"])}
        assert (
            findings["test-contributed"].status == "degraded"
            and findings["test-contributed"].fix == "do this"
        )
        assert "boom" in findings["test-crashing"].detail and not findings["test-crashing"].ok
    finally:
        doctor.CHECKS.pop("test-contributed")
        doctor.CHECKS.pop("test-crashing")
