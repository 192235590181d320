"""systemd units: they pass `systemd-analyze verify`, their sandboxing scores, and their privileges suffice.

No systemd runs as PID 1 here, so the services cannot be started as units. What can be proved is proved with
the real tools: `systemd-analyze verify` and `security --offline` on the rendered units, and each exporter run
by `setpriv` with exactly the user and capabilities its unit grants (the kernel enforces them the same way).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from obslab.paths import DEPLOY_DIR, REPO_ROOT

UNITS = DEPLOY_DIR / "systemd"
OBSLAB = REPO_ROOT / ".venv" / "bin" / "obslab"
NOBODY = 65534
requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setpriv to another user)")


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Key -> values (a key may repeat) of a unit file, continuation lines joined."""
    out: dict[str, list[str]] = {}
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("units")
    r = subprocess.run(
        ["bash", str(UNITS / "install.sh"), "--dest", str(dest), "--no-enable", "--prefix", str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return dest


def test_install_renders_every_unit(rendered: Path) -> None:
    sources = sorted(p.name for p in UNITS.iterdir() if p.suffix in (".service", ".target"))
    assert sources == sorted(p.name for p in rendered.iterdir())
    assert {"obslab-host-exporter.service", "obslab-ebpf-exporter.service", "obslab-console.service"} <= set(
        sources
    )
    assert "obslab-lab-reset.service" in sources
    for p in rendered.iterdir():
        assert "@PREFIX@" not in p.read_text(), p.name


def test_systemd_analyze_verify(rendered: Path) -> None:
    files = sorted(str(p) for p in rendered.iterdir())
    r = subprocess.run(
        ["systemd-analyze", "verify", *files], capture_output=True, text=True, timeout=120, cwd=rendered
    )
    # verify exits 0 on some problems (unknown keys are "ignored"), so any output is a failure too.
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


def test_verify_catches_a_broken_unit(rendered: Path, tmp_path: Path) -> None:
    """The check above can fail: a typo'd key and a missing binary are reported."""
    broken = tmp_path / "obslab-host-exporter.service"
    text = (rendered / broken.name).read_text()
    broken.write_text(
        text.replace("ProtectSystem=", "ProtectSytem=").replace(str(OBSLAB), "/nonexistent/obslab")
    )
    r = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert "ProtectSytem" in out and "/nonexistent/obslab" in out, out


EXPOSURE_LIMITS = {
    # systemd-analyze security's 0 (locked down) .. 10 (unprotected). The console and lab reset are root
    # by design (labs create cgroups, namespaces and nft tables); the rest must be well under "OK" (< 5).
    "obslab-host-exporter.service": 2.5,
    "obslab-prometheus.service": 2.5,
    "obslab-alertmanager.service": 2.5,
    "obslab-ebpf-exporter.service": 4.5,
}


@pytest.mark.parametrize("unit", sorted(EXPOSURE_LIMITS))
def test_exposure_level(rendered: Path, unit: str) -> None:
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(rendered / unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= EXPOSURE_LIMITS[unit], (unit, m.group(1))


def _caps(unit: str) -> list[str]:
    values = unit_settings(UNITS / unit).get("AmbientCapabilities", [""])
    return [c.lower().removeprefix("cap_") for c in " ".join(values).split()]


def _setpriv(caps: list[str], argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    spec = ",".join(["-all", *(f"+{c}" for c in caps)])
    cmd = [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        f"--inh-caps={spec}",
        f"--ambient-caps={spec}",
        f"--bounding-set={spec}",
        *argv,
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("OBSLAB_STATE_DIR",)}
    env["HOME"] = "/nonexistent"
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/", env=env)


@pytest.fixture
def checkout_readable_by_others() -> Iterator[None]:
    """The units run as throw-away users: the checkout must be reachable by them (install.sh warns too).

    The checkout's own root may be a 0700 ``mktemp -d`` (as CI's clone can be): open it to others for
    the test and put its mode back afterwards. A parent directory is not ours to change: skip then.
    """
    d = REPO_ROOT.parent
    while d != d.parent:
        if not d.stat().st_mode & stat.S_IXOTH:
            pytest.skip(f"{d} is not searchable by other users, as the units require (clone under /opt)")
        d = d.parent
    mode = stat.S_IMODE(REPO_ROOT.stat().st_mode)
    REPO_ROOT.chmod(mode | stat.S_IXOTH | stat.S_IROTH)
    try:
        yield
    finally:
        REPO_ROOT.chmod(mode)


@requires_root
@pytest.mark.usefixtures("checkout_readable_by_others")
def test_host_exporter_needs_no_privilege() -> None:
    """As an unprivileged user with no capability (the unit's DynamicUser), every collector succeeds."""
    assert _caps("obslab-host-exporter.service") == []
    r = _setpriv([], [str(OBSLAB), "exporter", "host", "--once"], timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    success = re.findall(r'^obslab_scrape_collector_success\{collector="([^"]+)"\} (\S+)', r.stdout, re.M)
    assert len(success) >= 10, r.stdout[-1000:]
    failed = [name for name, value in success if float(value) != 1.0]
    assert not failed, f"collectors failing without privileges: {failed}\n{r.stderr[-2000:]}"


def _ebpf_once(caps: list[str]) -> tuple[int, dict[str, float], str]:
    r = _setpriv(caps, [str(OBSLAB), "exporter", "ebpf", "--once", "--window", "1"], timeout=240)
    attached = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^obslab_ebpf_probe_attached\{probe="([^"]+)"\} (\S+)', r.stdout, re.M)
    }
    return r.returncode, attached, r.stderr


@requires_root
@pytest.mark.bpf
@pytest.mark.slow
@pytest.mark.usefixtures("checkout_readable_by_others")
def test_ebpf_exporter_capabilities_are_sufficient_and_each_necessary() -> None:
    """Exactly the unit's capabilities attach every probe; dropping any one of them breaks the exporter."""
    if not Path("/sys/kernel/tracing/events").exists():
        pytest.skip("tracefs is not mounted (make setup mounts it)")
    caps = _caps("obslab-ebpf-exporter.service")
    assert sorted(caps) == ["bpf", "dac_read_search", "perfmon"]
    rc, attached, err = _ebpf_once(caps)
    assert rc == 0, err[-3000:]
    assert attached and all(v == 1.0 for v in attached.values()), (attached, err[-2000:])
    for missing in caps:
        rc, attached, err = _ebpf_once([c for c in caps if c != missing])
        works = rc == 0 and attached and all(v == 1.0 for v in attached.values())
        assert not works, f"CAP_{missing.upper()} is granted but not needed"
