"""Helpers for the deploy tests: load deploy/ scripts by path, a real VictoriaMetrics, an agent Prometheus."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from obslab import procs
from obslab.errors import EnvironmentMissing
from obslab.paths import DEPLOY_DIR, REPO_ROOT, find_binary
from obslab.prom import PromClient, PrometheusServer


def load_script(path: Path) -> ModuleType:
    """Import a stand-alone script under deploy/ (not part of the package) as a module."""
    name = "obslab_deploy_" + path.stem.replace(".", "_").replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def agent_config_module() -> ModuleType:
    return load_script(DEPLOY_DIR / "classroom" / "agent_config.py")


def start_host_exporter(workdir: Path) -> tuple[procs.Proc, int]:
    """A real `obslab exporter host` on a free loopback port; returns (process, port)."""
    port = procs.free_port()
    obslab = Path(sys.executable).parent / "obslab"
    proc = procs.spawn(
        "host-exporter",
        [str(obslab), "exporter", "host", "--listen", f"127.0.0.1:{port}"],
        workdir / "exporter.log",
        cwd=REPO_ROOT,
    )
    if not procs.wait_http(f"http://127.0.0.1:{port}/metrics", timeout=60, proc=proc):
        log = procs.tail(proc.log)
        procs.stop(proc)
        raise EnvironmentMissing(f"`obslab exporter host` did not serve /metrics:\n{log}")
    return proc, port


class VictoriaMetrics:
    """A single-node VictoriaMetrics (Debian's /usr/bin/victoria-metrics) on loopback with a temp storage dir."""

    def __init__(self, auth: tuple[str, str] | None = None) -> None:
        self.auth = auth
        binary = find_binary("victoria-metrics")
        if not binary:
            raise EnvironmentMissing("victoria-metrics is not installed (make setup installs it)")
        self.binary = binary
        self.port = procs.free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obslabtest-deploy-vm-"))
        self.storage = self.workdir / "data"
        self.proc: procs.Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> PromClient:
        # VictoriaMetrics serves the Prometheus query API at the same paths (/api/v1/query...).
        return PromClient(self.url)

    def start(self) -> VictoriaMetrics:
        argv = [
            self.binary,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.storage}",
            "-retentionPeriod=1d",
            # By default the newest 30 s are hidden from queries (to wait for late samples); a test wants
            # what was just written.
            "-search.latencyOffset=1s",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]
        if self.auth:
            argv += [f"-httpAuth.username={self.auth[0]}", f"-httpAuth.password={self.auth[1]}"]
        self.proc = procs.spawn("victoria-metrics", argv, self.workdir / "vm.log")
        # /health answers without credentials even when -httpAuth.* is set.
        if not procs.wait_http(f"{self.url}/health", timeout=30, proc=self.proc):
            log = procs.tail(self.proc.log)
            self.stop()
            raise EnvironmentMissing(f"VictoriaMetrics did not start on {self.url}:\n{log}")
        return self

    def metrics(self) -> dict[str, float]:
        """VictoriaMetrics' own /metrics as {series: value} (unlabelled and labelled names as printed)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                continue
        return out

    def flush(self) -> None:
        """Make buffered samples searchable now (the /internal/force_flush endpoint, VictoriaMetrics ≥ 1.76)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10):
            pass

    def series_count(self, match: str) -> int:
        url = f"{self.url}/api/v1/series?" + urllib.parse.urlencode({"match[]": match, "start": "-1h"})
        with urllib.request.urlopen(url, timeout=10) as resp:
            return len(json.load(resp)["data"])

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.storage.rglob("*") if p.is_file())

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc)
            self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)


class AgentServer(PrometheusServer):
    """Prometheus in agent mode: a WAL instead of a TSDB, no rules, no queries; scrape and remote-write."""

    def argv(self) -> list[str]:
        # Agent mode refuses the --storage.tsdb.* flags, so the base argv cannot be reused as is.
        return [
            str(Path(super().argv()[0])),
            "--enable-feature=agent",
            f"--config.file={self.config_path}",
            f"--storage.agent.path={self.workdir / 'wal'}",
            f"--web.listen-address={self.host}:{self.port}",
            *self.extra_args,
        ]


# --- the fleet dashboard ------------------------------------------------------------------------------

FLEET_PATH = REPO_ROOT / "dashboards" / "fleet.dashboard.py"


def load_fleet() -> dict[str, Any]:
    """The fleet dashboard as Grafana JSON: through DASH's build.load when it exists, else from its module."""
    try:
        from obslab.dashboards import build  # DASH's builder (issue 5)

        return build.load("obslab-fleet")
    except (ImportError, AttributeError, KeyError):
        pass
    from grafanalib._gen import DashboardEncoder

    module = load_script(FLEET_PATH)
    return json.loads(json.dumps(module.dashboard.to_json_data(), cls=DashboardEncoder))


def _walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _walk_panels(p.get("panels", []))


def fleet_queries(dash: dict[str, Any], variables: dict[str, str] | None) -> list[tuple[str, str]]:
    """(panel title, expr) for every target; ``variables`` substitutes ``$name`` / ``${name}`` if given."""
    out = []
    for panel in _walk_panels(dash.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr:
                continue
            if variables is not None:
                for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
                    expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
            out.append((panel["title"], expr))
    return out
