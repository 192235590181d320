"""deploy/compose.yaml and deploy/Dockerfile: valid for Compose, least privilege, loopback only, files present.

No Docker engine runs here, so images are neither built nor started. `docker-compose config` (Debian's
docker-compose, which validates against the Compose schema without an engine) checks the file; the tests
below check what Compose does not: privileges, bind addresses, mounts and that every referenced file exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from obslab.paths import DEPLOY_DIR, REPO_ROOT

COMPOSE = DEPLOY_DIR / "compose.yaml"
DOCKERFILE = DEPLOY_DIR / "Dockerfile"
SERVICES = {"host-exporter", "ebpf-exporter", "prometheus", "alertmanager", "grafana", "console"}
OUR_PORTS = {"19090", "19093", "19094", "19100", "19101", "19300", "19400"}


def compose_cli() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        r = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if r.returncode == 0:
            return ["docker", "compose"]
    pytest.fail("neither docker-compose nor the docker compose plugin is installed (make setup installs it)")


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The file as Compose itself resolves it (anchors merged, paths absolute)."""
    r = subprocess.run(
        [*compose_cli(), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "OBSLAB_TOKEN": ""},
    )
    assert r.returncode == 0, r.stderr
    return dict(yaml.safe_load(r.stdout))


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The validation above can fail: an unknown key is refused."""
    bad = tmp_path / "compose.yaml"
    bad.write_text(COMPOSE.read_text().replace("cap_drop:", "cap_dorp:", 1))
    r = subprocess.run(
        [*compose_cli(), "-f", str(bad), "config"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode != 0 and "cap_dorp" in r.stdout + r.stderr


def test_services(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == SERVICES


def _text(service: dict[str, Any]) -> str:
    cmd = service.get("command", [])
    env = service.get("environment", {})
    return (
        " ".join(cmd if isinstance(cmd, list) else [cmd]) + " " + " ".join(f"{k}={v}" for k, v in env.items())
    )


def test_everything_binds_loopback(resolved: dict[str, Any]) -> None:
    for name, svc in resolved["services"].items():
        assert svc.get("network_mode") == "host", f"{name}: the exporters need the host's network view"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        text = _text(svc)
        addresses = re.findall(r"(\d+\.\d+\.\d+\.\d+):(\d+)", text)
        for host, port in addresses:
            assert host == "127.0.0.1", (name, host, port)
            assert port in OUR_PORTS, (name, port)
        assert "0.0.0.0" not in text, name
    grafana = resolved["services"]["grafana"]["environment"]
    assert grafana["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"


def test_least_privilege(resolved: dict[str, Any]) -> None:
    s = resolved["services"]
    privileged = sorted(n for n, v in s.items() if v.get("privileged"))
    assert privileged == ["console"], "only the console (which runs labs) may be privileged"
    for name, svc in s.items():
        if name == "console":
            continue
        assert svc.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
    assert not s["host-exporter"].get("cap_add")
    assert s["host-exporter"]["user"].split(":")[0] != "0"
    assert sorted(s["ebpf-exporter"]["cap_add"]) == ["BPF", "PERFMON"]
    for name in ("host-exporter", "ebpf-exporter", "console"):
        assert s[name].get("pid") == "host", name


def _mounts(svc: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for v in svc.get("volumes", []):
        if isinstance(v, dict):
            out.append((v.get("source", ""), v["target"], "ro" if v.get("read_only") else "rw"))
        else:
            parts = v.split(":")
            out.append((parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"))
    return out


def test_mounts(resolved: dict[str, Any]) -> None:
    s = resolved["services"]
    named = set(resolved.get("volumes", {}))
    for name, svc in s.items():
        for source, target, mode in _mounts(svc):
            if source in named:
                continue
            assert source.startswith("/"), (name, source)
            if source.startswith(str(REPO_ROOT)):
                # Our own files: they must exist, and be mounted read-only.
                assert Path(source).exists(), f"{name}: {source} does not exist"
                assert mode.startswith("ro"), (name, source)
            else:
                # Host paths: read-only, and those every Linux host has must exist here too.
                assert mode.startswith("ro"), (name, source, mode)
                if source in ("/proc", "/sys", "/", "/lib/modules", "/sys/kernel/tracing"):
                    assert Path(source).exists(), source
            assert target.startswith("/"), (name, target)
    ebpf_targets = {t for _, t, _ in _mounts(s["ebpf-exporter"])}
    assert {"/sys/kernel/tracing", "/lib/modules", "/usr/src"} <= ebpf_targets
    host_targets = {t for _, t, _ in _mounts(s["host-exporter"])}
    assert {"/host/proc", "/host/sys", "/host/root"} <= host_targets
    cmd = _text(s["host-exporter"])
    for flag, target in (
        ("--path.procfs", "/host/proc"),
        ("--path.sysfs", "/host/sys"),
        ("--path.rootfs", "/host/root"),
    ):
        assert f"{flag} {target}" in cmd


def test_prometheus_rules_resolve_inside_the_container(resolved: dict[str, Any]) -> None:
    """The mounted config names its rules relatively; map them back through the mounts onto deploy/."""
    prom = resolved["services"]["prometheus"]
    mounts = {t: Path(src) for src, t, _ in _mounts(prom) if src.startswith("/")}
    config_arg = next(a for a in prom["command"] if a.startswith("--config.file="))
    config_in = PurePosixPath(config_arg.split("=", 1)[1])
    config_host = mounts[str(config_in)]
    cfg = yaml.safe_load(config_host.read_text())
    assert cfg["global"]["scrape_interval"] == "5s"
    for pattern in cfg["rule_files"]:
        in_container = PurePosixPath(str(config_in.parent / pattern))
        parts: list[str] = []
        for p in in_container.parts:
            if p == "..":
                parts.pop()
            else:
                parts.append(p)
        target_dir = "/".join(parts[:-1]).replace("//", "/")
        assert target_dir in mounts, f"{pattern} -> {target_dir} is not mounted"
        assert mounts[target_dir].resolve() == (DEPLOY_DIR / "prometheus" / "rules").resolve()
    r = subprocess.run(
        ["promtool", "check", "config", str(config_host)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_alertmanager_config_is_valid(resolved: dict[str, Any]) -> None:
    am = resolved["services"]["alertmanager"]
    source = next(Path(src) for src, t, _ in _mounts(am) if t == "/etc/obslab/alertmanager.yml")
    r = subprocess.run(["amtool", "check-config", str(source)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM debian:12", text, re.M)
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for item in src.split():
            assert (REPO_ROOT / item).exists(), f"Dockerfile copies {item}, which is missing"
    build = yaml.safe_load(COMPOSE.read_text())["x-obslab-image"]["build"]
    assert (DEPLOY_DIR / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE.resolve()
    # Every apt package the image installs exists in Debian's archive (catches typos without building).
    packages = re.search(r"apt-get install -y --no-install-recommends \\\n(.*?)\\\n &&", text, re.S)
    assert packages
    names = [n for n in packages.group(1).split() if n != "\\"]
    assert "python3-bpfcc" in names
    r = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *names], capture_output=True, text=True, timeout=60
    )
    found = set(re.findall(r"^Package: (\S+)", r.stdout, re.M))
    assert set(names) <= found, f"not in the apt archive: {sorted(set(names) - found)}"


def test_grafana_provisioning_variables_are_set(resolved: dict[str, Any]) -> None:
    """Grafana expands $VARS in provisioning files: each one they use must be in the service's environment,
    and the dashboards directory it names must be the mount of deploy/grafana/dashboards."""
    grafana = resolved["services"]["grafana"]
    env = grafana["environment"]
    prov = DEPLOY_DIR / "grafana" / "provisioning"
    files = sorted(prov.rglob("*.y*ml"))
    assert files, "deploy/grafana/provisioning has no files"
    used = set()
    for f in files:
        used |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)\}?", f.read_text()))
    missing = sorted(v for v in used if v not in env and not v.startswith("GF_"))
    assert not missing, f"provisioning uses {missing}, not set for the grafana service"
    mounts = {t: src for src, t, _ in _mounts(grafana)}
    providers = [
        p
        for f in files
        for p in (yaml.safe_load(f.read_text()) or {}).get("providers", [])
        if p["type"] == "file"
    ]
    assert providers, "no file provider for the built dashboards"
    for provider in providers:
        path = re.sub(r"\$\{?([A-Z0-9_]+)\}?", lambda m: env[m.group(1)], provider["options"]["path"])
        assert Path(mounts[path]).resolve() == (DEPLOY_DIR / "grafana" / "dashboards").resolve(), path
    assert Path(mounts[env["GF_PATHS_PROVISIONING"]]).resolve() == prov.resolve()
