"""`obslab up | down | status`: the local stack, supervised as background processes.

Every component is a process started with ``procs.spawn`` in its own session; its record (PID + start time)
and log live in ``state_dir()/stack/``. ``up`` keeps components that already run and answer their health
check, starts the others in parallel and waits for them; ``down`` stops, by PID, only what those records
name (and anything left in their sessions), so nothing obslab started keeps running. Ports come from
``obslab.config`` (``OBSLAB_<NAME>_PORT``), so tests run a whole stack beside a live one.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from obslab import config, procs
from obslab.clickutil import emit_json, err_console, json_option
from obslab.errors import CheckFailed, EnvironmentMissing
from obslab.paths import DEPLOY_DIR, REPO_ROOT, find_binary, state_dir
from obslab.prom import RULES_DIR, PrometheusServer, ScrapeJob, render_config

ALERTMANAGER_CONFIG = DEPLOY_DIR / "alertmanager" / "alertmanager.yml"
GRAFANA_PROVISIONING = DEPLOY_DIR / "grafana" / "provisioning"
GRAFANA_DASHBOARDS = DEPLOY_DIR / "grafana" / "dashboards"


def stack_dir() -> Path:
    path = state_dir() / "stack"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Launch:
    """How to start a component: its command line and extra environment."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Component:
    name: str
    port_key: str
    health_path: str
    required: bool
    start_timeout: float
    stop_timeout: float
    prepare: Callable[[StackContext], Launch | str]  # a str says why it cannot run here
    scrape_job: str | None = None  # the Prometheus job scraping it, if any

    @property
    def port(self) -> int:
        return config.port(self.port_key)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def record(self) -> Path:
        return stack_dir() / f"{self.name}.json"

    @property
    def log(self) -> Path:
        return stack_dir() / f"{self.name}.log"

    def proc(self) -> procs.Proc | None:
        rec = procs.Proc.load(self.record)
        return rec if rec is not None and rec.alive() else None


#: The components in start order (``down`` goes in reverse). Filled by the @component decorator.
COMPONENTS: dict[str, Component] = {}


def component(
    name: str,
    port_key: str,
    health_path: str,
    *,
    required: bool = True,
    start_timeout: float = 40.0,
    stop_timeout: float = 10.0,
    scrape_job: str | None = None,
) -> Callable[[Callable[[StackContext], Launch | str]], Callable[[StackContext], Launch | str]]:
    def register(fn: Callable[[StackContext], Launch | str]) -> Callable[[StackContext], Launch | str]:
        COMPONENTS[name] = Component(
            name, port_key, health_path, required, start_timeout, stop_timeout, fn, scrape_job
        )
        return fn

    return register


@dataclass
class StackContext:
    token: str
    dir: Path

    @property
    def prometheus_url(self) -> str:
        return COMPONENTS["prometheus"].url


# ---- the components --------------------------------------------------------------------------------


@component("host", "host_exporter", "/metrics", scrape_job="host")
def _host(ctx: StackContext) -> Launch | str:
    return Launch(
        [*procs.OBSLAB, "exporter", "host", "--listen", f"127.0.0.1:{config.port('host_exporter')}"]
    )


def ebpf_unavailable() -> str | None:
    """Why the eBPF exporter cannot run here (None when it can): root, tracefs, an importable bcc."""
    if os.geteuid() != 0:
        return "needs root (BPF programs are loaded by root); run `sudo obslab up`"
    if not any(Path(p).is_dir() for p in ("/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events")):
        return "tracefs is not mounted: `mount -t tracefs nodev /sys/kernel/tracing` (make setup does it)"
    if importlib.util.find_spec("obslab.exporters.ebpf.cli") is None:
        return "the eBPF exporter is not installed in this checkout"
    try:
        res = subprocess.run(
            [sys.executable, "-c", "import bcc"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"could not test `import bcc`: {e}"
    if res.returncode != 0:
        last = (res.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        return f"bcc cannot be imported ({last}): `make setup` installs python3-bpfcc; `obslab doctor` tells more"
    return None


@component("ebpf", "ebpf_exporter", "/metrics", required=False, start_timeout=150.0, scrape_job="ebpf")
def _ebpf(ctx: StackContext) -> Launch | str:
    why = ebpf_unavailable()
    if why:
        return why
    return Launch(
        [*procs.OBSLAB, "exporter", "ebpf", "--listen", f"127.0.0.1:{config.port('ebpf_exporter')}"]
    )


@component("demo", "demo", "/metrics", start_timeout=90.0, stop_timeout=40.0, scrape_job="demo")
def _demo(ctx: StackContext) -> Launch | str:
    if importlib.util.find_spec("obslab.labs.demo") is None:
        return "the demo service (obslab.labs.demo) is not installed in this checkout"
    return Launch([sys.executable, "-m", "obslab.labs.demo", "run", "--port", str(config.port("demo"))])


@component("alertmanager", "alertmanager", "/-/ready", scrape_job="alertmanager")
def _alertmanager(ctx: StackContext) -> Launch | str:
    binary = find_binary("prometheus-alertmanager") or find_binary("alertmanager")
    if not binary:
        return "alertmanager is not installed: `make setup` (apt-get install prometheus-alertmanager)"
    data = ctx.dir / "alertmanager"
    data.mkdir(exist_ok=True)
    return Launch(
        [
            binary,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{config.port('alertmanager')}",
            # An empty cluster address disables gossip: one local Alertmanager needs no peers or port.
            "--cluster.listen-address=",
        ]
    )


def prometheus_config(scraped: list[Component]) -> str:
    """The stack's Prometheus config: 5 s scrape/eval, a job per scraped component, every rule file."""
    jobs = [ScrapeJob(c.scrape_job, [f"127.0.0.1:{c.port}"]) for c in scraped if c.scrape_job]
    return render_config(
        jobs,
        scrape_interval="5s",
        rule_files=sorted(str(p) for p in [*RULES_DIR.glob("*.yml"), *RULES_DIR.glob("*.yaml")]),
        alertmanagers=[f"127.0.0.1:{config.port('alertmanager')}"],
    )


def prometheus_server(ctx: StackContext) -> PrometheusServer:
    return PrometheusServer("", port=config.port("prometheus"), workdir=ctx.dir / "prometheus")


@component("prometheus", "prometheus", "/-/ready", scrape_job="prometheus")
def _prometheus(ctx: StackContext) -> Launch | str:
    if not find_binary("prometheus"):
        return "prometheus is not installed: `make setup` (apt-get install prometheus)"
    server = prometheus_server(ctx)
    server.workdir.mkdir(parents=True, exist_ok=True)
    return Launch(server.argv())  # the config file is written by `up` before it starts anything


@component("console", "console", "/api/health")
def _console(ctx: StackContext) -> Launch | str:
    return Launch(
        [
            *procs.OBSLAB,
            "console",
            "--listen",
            f"127.0.0.1:{config.port('console')}",
            "--prometheus",
            ctx.prometheus_url,
        ],
        env={"OBSLAB_TOKEN": ctx.token},
    )


def grafana_homepath(binary: str) -> str | None:
    for cand in ("/usr/share/grafana", str(Path(binary).resolve().parent.parent / "share" / "grafana")):
        if Path(cand, "conf", "defaults.ini").exists():
            return cand
    return None


@component("grafana", "grafana", "/api/health", required=False, start_timeout=90.0)
def _grafana(ctx: StackContext) -> Launch | str:
    binary = find_binary("grafana-server") or find_binary("grafana")
    if not binary:
        return (
            "grafana-server is not on PATH (Grafana is not in Debian's archive; install it from "
            "packages.grafana.com and run `obslab up` again); the console draws the same dashboards"
        )
    home = grafana_homepath(binary)
    if not home:
        return f"found {binary} but not its home (conf/defaults.ini)"
    data = ctx.dir / "grafana"
    (data / "logs").mkdir(parents=True, exist_ok=True)
    argv = [binary, "server"] if Path(binary).name == "grafana" else [binary]
    return Launch(
        [*argv, f"--homepath={home}"],
        env={
            "GF_SERVER_HTTP_ADDR": "127.0.0.1",
            "GF_SERVER_HTTP_PORT": str(config.port("grafana")),
            "GF_PATHS_DATA": str(data),
            "GF_PATHS_LOGS": str(data / "logs"),
            "GF_PATHS_PROVISIONING": str(GRAFANA_PROVISIONING),
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
            # Read by deploy/grafana/provisioning (Grafana expands $VARS in provisioning files).
            "OBSLAB_PROMETHEUS_URL": ctx.prometheus_url,
            "OBSLAB_GRAFANA_DASHBOARDS": str(GRAFANA_DASHBOARDS),
        },
    )


# ---- health, records, token ------------------------------------------------------------------------


def healthy(comp: Component, token: str | None = None, timeout: float = 2.0) -> bool:
    req = urllib.request.Request(comp.url + comp.health_path)
    if comp.name == "console" and token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def token_file() -> Path:
    return stack_dir() / "console.token"


def console_token(create: bool = False) -> str | None:
    """``OBSLAB_TOKEN``, else the stack's saved token (created, mode 0600, when ``create``)."""
    env = os.environ.get("OBSLAB_TOKEN")
    if env:
        return env
    path = token_file()
    with contextlib.suppress(OSError):
        saved = path.read_text().strip()
        if saved:
            return saved
    if not create:
        return None
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def login_url(token: str | None) -> str:
    url = COMPONENTS["console"].url
    return f"{url}/?token={token}" if token else url


@contextlib.contextmanager
def stack_lock() -> Iterator[None]:
    """One `up`/`down` at a time per state directory."""
    with open(stack_dir() / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def session_members(sid: int, not_before: int) -> list[int]:
    """PIDs in session ``sid`` started no earlier than ``not_before`` (what a component left behind)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(b")") + 2 :].split()
        # after comm: state ppid pgrp session ... starttime (field 22 overall)
        if int(rest[3]) == sid and int(rest[19]) >= not_before and rest[0] != b"Z":
            found.append(int(entry.name))
    return found


def stop_component(comp: Component) -> bool:
    """Stop a component by its record (SIGTERM, then SIGKILL), then whatever remains of its session."""
    rec = procs.Proc.load(comp.record)
    was_running = False
    if rec is not None and rec.starttime >= 0:
        was_running = procs.stop(rec, timeout=comp.stop_timeout)
        # Each component leads its own session (procs.spawn); children it failed to reap go too.
        # The sweep runs right after the leader ended, so its session id cannot have been reused.
        for pid in session_members(rec.pid, rec.starttime):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    comp.record.unlink(missing_ok=True)
    return was_running


# ---- up / down / status ----------------------------------------------------------------------------


@dataclass
class Outcome:
    state: str  # kept | started | failed | skipped
    note: str = ""


def _wait_healthy(comp: Component, proc: procs.Proc, token: str) -> bool:
    deadline = time.monotonic() + comp.start_timeout
    while time.monotonic() < deadline:
        if healthy(comp, token):
            return True
        if not proc.alive():
            return False
        time.sleep(0.2)
    return False


def _reload_prometheus(url: str) -> None:
    req = urllib.request.Request(f"{url}/-/reload", method="POST")
    with contextlib.suppress(urllib.error.URLError, OSError), urllib.request.urlopen(req, timeout=10):
        pass


def bring_up(skip: tuple[str, ...] = ()) -> dict[str, Outcome]:
    """Start what is not running; returns each component's outcome. Raises on a port conflict (exit 3)."""
    ctx = StackContext(token=console_token(create=True) or "", dir=stack_dir())
    outcomes: dict[str, Outcome] = {}
    to_start: dict[str, Launch] = {}
    for comp in COMPONENTS.values():
        if comp.name in skip:
            outcomes[comp.name] = Outcome("skipped", "--skip")
            continue
        proc = comp.proc()
        if proc is not None:
            if _wait_healthy(comp, proc, ctx.token) if not healthy(comp, ctx.token) else True:
                outcomes[comp.name] = Outcome("kept", f"pid {proc.pid}")
                continue
            err_console.print(f"{comp.name}: pid {proc.pid} runs but is not healthy; restarting it")
            stop_component(comp)
        prepared = comp.prepare(ctx)
        if isinstance(prepared, str):
            outcomes[comp.name] = Outcome("skipped", prepared)
            continue
        to_start[comp.name] = prepared
    busy = [
        f"port {COMPONENTS[n].port} ({n}; move it with OBSLAB_{COMPONENTS[n].port_key.upper()}_PORT)"
        for n in to_start
        if procs.port_in_use("127.0.0.1", COMPONENTS[n].port)
    ]
    if busy:
        raise EnvironmentMissing(
            "already in use by another program: "
            + "; ".join(busy)
            + ". Stop that program, or give obslab another port."
        )

    def scraped() -> list[Component]:
        return [
            c
            for c in COMPONENTS.values()
            if c.scrape_job
            and (c.name in to_start or outcomes.get(c.name, Outcome("")).state in ("kept", "started"))
        ]

    server = prometheus_server(ctx)
    server.workdir.mkdir(parents=True, exist_ok=True)
    text = prometheus_config(scraped())
    if not server.config_path.exists() or server.config_path.read_text() != text:
        server.config_path.write_text(text)
        if outcomes.get("prometheus", Outcome("")).state == "kept":
            _reload_prometheus(server.url)

    started: dict[str, procs.Proc] = {}
    for name, launch in to_start.items():
        comp = COMPONENTS[name]
        with open(comp.log, "ab") as f:
            f.write(
                f"\n--- obslab up {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(launch.argv)}\n".encode()
            )
        started[name] = procs.spawn(
            name, launch.argv, comp.log, env=launch.env, cwd=REPO_ROOT, record=comp.record
        )
    for name, proc in started.items():
        comp = COMPONENTS[name]
        if _wait_healthy(comp, proc, ctx.token):
            outcomes[name] = Outcome("started", f"pid {proc.pid}")
            continue
        why = "exited" if not proc.alive() else f"not healthy after {comp.start_timeout:.0f}s"
        stop_component(comp)
        outcomes[name] = Outcome("failed", f"{why}; last lines of {comp.log}:\n{procs.tail(comp.log, 15)}")

    # Scrape only what runs: a component that failed or was skipped would only fire a TargetDown alert.
    final = prometheus_config(
        [c for c in COMPONENTS.values() if c.scrape_job and outcomes[c.name].state in ("kept", "started")]
    )
    if final != server.config_path.read_text():
        server.config_path.write_text(final)
        if outcomes["prometheus"].state in ("kept", "started"):
            _reload_prometheus(server.url)
    return {name: outcomes[name] for name in COMPONENTS}


def component_status(token: str | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for comp in COMPONENTS.values():
        proc = comp.proc()
        url = login_url(token) if comp.name == "console" else comp.url
        out[comp.name] = {
            "url": comp.url,
            "healthy": bool(proc is not None and healthy(comp, token)),
            "pid": proc.pid if proc is not None else None,
            "running": proc is not None,
            "log": str(comp.log),
        }
        if comp.name == "console":
            out[comp.name]["login_url"] = url
    return out


def _print_table(rows: dict[str, dict[str, Any]], notes: dict[str, str] | None = None) -> None:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", box=None)
    for col in ("component", "state", "url", "pid"):
        table.add_column(col)
    for name, row in rows.items():
        state = (
            "[green]healthy[/]"
            if row["healthy"]
            else ("[red]unhealthy[/]" if row["running"] else "[dim]down[/]")
        )
        note = (notes or {}).get(name, "")
        table.add_row(name, state + (f" [dim]{note}[/]" if note else ""), row["url"], str(row["pid"] or ""))
    err_console.print(table)


@click.command()
@click.option(
    "--skip",
    multiple=True,
    type=click.Choice(list(COMPONENTS)),
    help="Do not start this component (repeatable), e.g. --skip ebpf.",
)
def up(skip: tuple[str, ...]) -> None:
    """Start the local stack: exporters, Prometheus, Alertmanager, demo service, console (+ Grafana).

    Idempotent: components already running and healthy are kept. Logs and PID records live in
    STATE_DIR/stack/. Ports: OBSLAB_<NAME>_PORT (e.g. OBSLAB_PROMETHEUS_PORT=29090). Exit 3 when a port is
    taken by another program, 1 when a required component fails to start.
    """
    with stack_lock():
        outcomes = bring_up(skip)
    failed = []
    for name, o in outcomes.items():
        comp = COMPONENTS[name]
        if o.state == "failed":
            err_console.print(f"[red]{name} failed to start[/]: {o.note}", markup=True, highlight=False)
            if comp.required:
                failed.append(name)
        elif o.state == "skipped" and o.note != "--skip":
            err_console.print(f"[yellow]{name} not started[/]: {o.note}", highlight=False)
    token = console_token()
    rows = component_status(token)
    _print_table(rows, {n: o.state for n, o in outcomes.items()})
    if rows["console"]["healthy"]:
        click.echo(f"console: {login_url(token)}")
    err_console.print(f"logs and state: {stack_dir()}   stop with: obslab down", highlight=False)
    if failed:
        raise CheckFailed(f"required component(s) failed to start: {', '.join(failed)} (see above)")


def stop_running_lab() -> str | None:
    """Stop a lab run (its faults are reverted by the labs engine) so `down` leaves nothing running."""
    if importlib.util.find_spec("obslab.labs.api") is None:
        return None
    try:
        from obslab.labs import api

        cur = api.current()
        if cur.get("state") in ("starting", "running"):
            api.stop()
            return str(cur.get("lab"))
    except Exception as e:  # down must go on even when the labs engine is broken
        err_console.print(f"could not stop the running lab: {e} (`obslab lab reset` reverts it)")
    return None


@click.command()
def down() -> None:
    """Stop everything `obslab up` started (by PID), and a running lab, leaving nothing running."""
    with stack_lock():
        lab = stop_running_lab()
        if lab:
            err_console.print(f"stopped lab {lab} (faults reverted)")
        for comp in reversed(list(COMPONENTS.values())):
            if stop_component(comp):
                err_console.print(f"stopped {comp.name}")
        leftovers = [c.name for c in COMPONENTS.values() if c.proc() is not None]
    if leftovers:
        raise CheckFailed(f"still running: {', '.join(leftovers)}")
    err_console.print("the stack is down")


@click.command()
@json_option
def status(as_json: bool) -> None:
    """Each component of the local stack: URL, PID, healthy or not. Exit 1 if a running one is unhealthy."""
    token = console_token()
    rows = component_status(token)
    if as_json:
        emit_json({"components": rows, "state_dir": str(stack_dir())})
    else:
        _print_table(rows)
        if rows["console"]["healthy"]:
            click.echo(f"console: {login_url(token)}")
    running = [r for r in rows.values() if r["running"]]
    if not running:
        if not as_json:
            err_console.print("the stack is not running: `obslab up`")
        raise SystemExit(1)
    if any(not r["healthy"] for r in running):
        raise SystemExit(1)
