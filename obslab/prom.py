"""A real Prometheus for obslab: config rendering, a supervised process, and a small HTTP API client.

Used by the local stack (`obslab up`), the lab selftests (which start one when none runs) and the tests.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from obslab import procs
from obslab.errors import EnvironmentMissing
from obslab.paths import DEPLOY_DIR, find_binary

RULES_DIR = DEPLOY_DIR / "prometheus" / "rules"


def prometheus_binary() -> str:
    path = find_binary("prometheus")
    if not path:
        raise EnvironmentMissing("prometheus is not installed: run `make setup` (apt-get install prometheus)")
    return path


@dataclass
class ScrapeJob:
    name: str
    targets: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    interval: str | None = None


def render_config(
    jobs: Iterable[ScrapeJob],
    *,
    scrape_interval: str = "5s",
    rule_files: Iterable[str | Path] = (),
    alertmanagers: Iterable[str] = (),
    external_labels: Mapping[str, str] | None = None,
    remote_write: Iterable[str] = (),
) -> str:
    """Prometheus YAML for the given scrape jobs (static targets), rule files and alertmanagers."""
    cfg: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [],
    }
    if external_labels:
        cfg["global"]["external_labels"] = dict(external_labels)
    rules = [str(r) for r in rule_files]
    if rules:
        cfg["rule_files"] = rules
    ams = list(alertmanagers)
    if ams:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": ams}]}]}
    for job in jobs:
        sc: dict[str, Any] = {"job_name": job.name, "static_configs": [{"targets": job.targets}]}
        if job.labels:
            sc["static_configs"][0]["labels"] = dict(job.labels)
        if job.interval:
            sc["scrape_interval"] = job.interval
        cfg["scrape_configs"].append(sc)
    rw = list(remote_write)
    if rw:
        cfg["remote_write"] = [{"url": u} for u in rw]
    return yaml.safe_dump(cfg, sort_keys=False)


class PromAPIError(RuntimeError):
    pass


class PromClient:
    """The few Prometheus HTTP API calls obslab needs."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                raise PromAPIError(f"{path}: HTTP {e.code}") from None
            raise PromAPIError(f"{body.get('errorType')}: {body.get('error')}") from None
        if body.get("status") != "success":
            raise PromAPIError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def ready(self) -> bool:
        return procs.http_ok(f"{self.base_url}/-/ready")

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; a list of {metric, value} for vectors (scalars come back as one unlabeled item)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        data = self._get("/api/v1/query", params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})
        return list(data["result"])

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, or None when it returns nothing."""
        result = self.query(expr)
        if not result:
            return None
        return float(result[0]["value"][1])

    def targets(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/targets")["activeTargets"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/alerts")["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/rules")["groups"])

    def wait_for(
        self, expr: str, check: Callable[[list[dict[str, Any]]], bool] = bool, timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Poll an instant query until ``check(result)`` holds; raises TimeoutError with the last result."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        while True:
            try:
                last = self.query(expr)
                if check(last):
                    return last
            except (PromAPIError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expr!r} did not hold within {timeout:.0f}s; last result: {last}")
            time.sleep(0.5)

    def wait_targets_up(self, timeout: float = 60.0) -> None:
        self.wait_for("min(up) == 1 and count(up) == count(up == 1)", timeout=timeout)


class PrometheusServer:
    """A Prometheus process with its own config and TSDB under ``workdir``.

    ``with PrometheusServer(...) as prom:`` starts it and waits for /-/ready; leaving stops it (by PID) and,
    if the work dir was a temporary one, removes it.
    """

    def __init__(
        self,
        config_text: str,
        port: int | None = None,
        workdir: Path | None = None,
        extra_args: Iterable[str] = (),
        host: str = "127.0.0.1",
    ):
        self.port = port or procs.free_port(host)
        self.host = host
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="obslab-prom-"))
        self.config_text = config_text
        self.extra_args = list(extra_args)
        self.proc: procs.Proc | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def client(self) -> PromClient:
        return PromClient(self.url)

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    def argv(self) -> list[str]:
        return [
            prometheus_binary(),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=2d",
            *self.extra_args,
        ]

    def start(self, timeout: float = 30.0, record: Path | None = None) -> PrometheusServer:
        if procs.port_in_use(self.host, self.port):
            raise EnvironmentMissing(f"Prometheus port {self.host}:{self.port} is already in use")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text)
        self.proc = procs.spawn("prometheus", self.argv(), self.workdir / "prometheus.log", record=record)
        if not procs.wait_http(f"{self.url}/-/ready", timeout=timeout, proc=self.proc):
            log = procs.tail(self.proc.log)
            self.stop()
            raise EnvironmentMissing(f"Prometheus did not become ready on {self.url}:\n{log}")
        return self

    def reload(self, config_text: str | None = None) -> None:
        if config_text is not None:
            self.config_text = config_text
            self.config_path.write_text(config_text)
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc)
            self.proc = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
