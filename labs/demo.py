"""The demo service: a small "checkout" API under steady load, the patient every lab makes sick.

``python -m obslab.labs.demo run --port P`` (or ``obslab lab demo``) is a supervisor that builds a sandbox,
every step ledgered first (labs/ledger.py):

- cgroups ``obslab/<iid>/app/svc`` (the service; labs put quotas and limits on ``app`` and culprits that share
  its limits in ``app/<lab>``) and ``obslab/<iid>/loadgen`` (the client, outside the service's limits);
- a 128 MiB ext4 log volume, a sparse file in the state directory loop-mounted at ``demo/logs``
  (disk labs fill it or fsync-storm it; the host's own filesystems are never filled);
- a network namespace ``obslab-<iid>`` joined to the root namespace by a veth pair ``obslab-<iid>h`` (root
  side) / ``obslab-<iid>n``: the service listens on the root-side address, the load generator runs inside
  the namespace, so every request crosses the veth and network labs (tbf on the veth, nft drops inside the
  namespace) hit lab traffic only.

The service process serves ``/checkout`` on the veth address and ``/metrics`` on ``127.0.0.1:P``: server-side
RED (``obslab_demo_requests_total{code}``, ``obslab_demo_request_duration_seconds``), the load generator's
client-side view (``obslab_demo_client_requests_total{outcome}``, ``..._client_request_duration_seconds``,
relayed from a file the client rewrites each second) and the lab state (``obslab_lab_active{lab}``,
``obslab_lab_fault_active{lab,fault}``). SIGTERM tears it all down. ``state_dir()/demo.json`` records it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from obslab.labs import sandbox
from obslab.labs.ledger import Ledger, register_instance, unregister_instance

from obslab import procs
from obslab.paths import state_dir

APP_PORT = 8080
LOG_VOLUME_MIB = 128
RESPONSE_BYTES = (
    24 * 1024
)  # 20 req/s x 24 KiB ~ 3.9 Mbit/s across the veth: enough for a bandwidth cap to bite
DEFAULT_RPS = 20.0


@dataclass
class DemoInfo:
    """What demo.json holds: the supervisor's Proc fields plus where its sandbox lives."""

    name: str
    pid: int
    starttime: int
    argv: list[str]
    log: str
    port: int
    iid: str
    cgroup_mode: str
    app_cgroup: str
    svc_cgroup: str
    netns: str
    veth_host: str
    veth_ns: str
    host_addr: str
    ns_addr: str
    app_port: int
    log_dir: str
    ready: bool = False

    @property
    def proc(self) -> procs.Proc:
        return procs.Proc(self.name, self.pid, self.starttime, self.argv, self.log)

    def alive(self) -> bool:
        return self.proc.alive()

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"


def demo_file(state: Path | None = None) -> Path:
    return (state or state_dir()) / "demo.json"


def load_demo(state: Path | None = None) -> DemoInfo | None:
    """The running demo of this state directory, or None (no record, or its process is gone)."""
    try:
        info = DemoInfo(**json.loads(demo_file(state).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return info if info.alive() else None


def wait_ready(timeout: float = 60.0, state: Path | None = None, proc: procs.Proc | None = None) -> DemoInfo:
    """Wait for a demo to record itself ready and answer on /metrics."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = load_demo(state)
        if info and info.ready and procs.http_ok(info.metrics_url):
            return info
        if proc is not None and not proc.alive():
            break
        time.sleep(0.2)
    log = procs.tail(proc.log) if proc else ""
    raise RuntimeError(f"the demo service did not become ready within {timeout:.0f}s\n{log}")


def spawn_demo(port: int, max_seconds: float | None = None, rps: float = DEFAULT_RPS) -> procs.Proc:
    """Start the demo supervisor in the background (the caller ledgers the returned Proc)."""
    argv = [sys.executable, "-m", "obslab.labs.demo", "run", "--port", str(port), "--rps", str(rps)]
    if max_seconds:
        argv += ["--max-seconds", str(int(max_seconds))]
    return procs.spawn("demo", argv, state_dir() / "demo" / "demo.log")


# ------------------------------------------------------------------------------------- the service


class _Metrics:
    """Server-side RED metrics, the client's relayed metrics and the lab state, in one registry."""

    def __init__(self, state: Path):
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # *_created series only add noise to every query
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "obslab_demo_requests",
            "Requests the demo service answered, by HTTP status code.",
            ["code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "obslab_demo_request_duration_seconds",
            "Time the demo service took to answer a request (server side).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        for code in ("200", "500", "507"):
            self.requests.labels(code)
        self.registry.register(_RelayCollector(state / "demo" / "loadgen.prom"))
        self.registry.register(_LabStateCollector(state))


class _RelayCollector:
    """The load generator's metrics: it runs in another network namespace and rewrites a file each second."""

    def __init__(self, path: Path):
        self.path = path

    def collect(self) -> Iterator[Any]:
        from prometheus_client.parser import text_string_to_metric_families

        try:
            st = self.path.stat()
            if time.time() - st.st_mtime > 15:  # a stale file means a dead client: export nothing
                return
            text = self.path.read_text()
        except OSError:
            return
        yield from text_string_to_metric_families(text)


class _LabStateCollector:
    """``obslab_lab_active{lab}`` for every catalog lab and ``obslab_lab_fault_active{lab,fault}`` of the run."""

    def __init__(self, state: Path):
        self.run_file = state / "lab" / "run.json"
        try:
            from obslab.labs.catalog import load_catalog

            self.labs = sorted(load_catalog())
        except Exception:  # a broken catalog file must not take the service's metrics down
            self.labs = []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            run = json.loads(self.run_file.read_text())
        except (OSError, ValueError):
            run = {}
        running = run.get("lab") if run.get("state") in ("starting", "running") else None
        active = GaugeMetricFamily("obslab_lab_active", "1 while this lab runs, else 0.", labels=["lab"])
        for lab in sorted({*self.labs, *([running] if running else [])}):
            active.add_metric([lab], 1.0 if lab == running else 0.0)
        yield active
        faults = GaugeMetricFamily(
            "obslab_lab_fault_active",
            "1 while this fault of the running lab is applied.",
            labels=["lab", "fault"],
        )
        if running:
            for fault, on in sorted((run.get("faults") or {}).items()):
                faults.add_metric([running, fault], 1.0 if on else 0.0)
        yield faults


def burn_cpu(iterations: int = 600) -> bytes:
    """A little real CPU work per request (pricing the cart), ~1-2 ms on a 2020s core."""
    h = b"cart"
    for _ in range(iterations):
        h = hashlib.sha256(h * 32).digest()
    return h


def serve(host: str, app_port: int, metrics_port: int, log_dir: Path, state: Path) -> None:
    """The service process: /checkout on host:app_port, /metrics on 127.0.0.1:metrics_port."""
    from prometheus_client import generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    metrics = _Metrics(state)
    log_path = log_dir / "checkout.log"
    log_lock = threading.Lock()
    body = (json.dumps({"receipt": "x" * RESPONSE_BYTES}) + "\n").encode()

    class App(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/checkout"):
                self.checkout()
            elif self.path in ("/health", "/-/healthy"):
                self.reply(200, b"ok\n", "text/plain")
            else:
                self.reply(404, b"not found\n", "text/plain")

        def reply(self, code: int, data: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(data)

        def checkout(self) -> None:
            t0 = time.perf_counter()
            code = 200
            digest = burn_cpu()
            scratch = bytearray(512 * 1024)  # the cart's working set: a memory limit makes this reclaim
            for i in range(0, len(scratch), 4096):
                scratch[i] = 1
            line = f"{time.time():.3f} checkout ok {digest.hex()[:16]}\n".encode()
            try:
                with log_lock:
                    # Every order is durably logged before it is confirmed: the fsync is on the request path.
                    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    try:
                        os.write(fd, line)
                        os.fsync(fd)
                        if os.fstat(fd).st_size > 8 << 20:  # rotate by truncation: the volume is small
                            os.ftruncate(fd, 0)
                    finally:
                        os.close(fd)
            except OSError as e:
                code = 507 if e.errno == errno.ENOSPC else 500
            if code == 200:
                self.reply(200, body, "application/json")
            else:
                self.reply(code, b'{"error": "order log unavailable"}\n', "application/json")
            metrics.requests.labels(str(code)).inc()
            metrics.duration.observe(time.perf_counter() - t0)

    class MetricsHandler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                data, ctype, code = generate_latest(metrics.registry), CONTENT_TYPE_LATEST, 200
            elif self.path in ("/", "/health", "/-/healthy"):
                data, ctype, code = b"obslab demo service: /metrics\n", "text/plain", 200
            else:
                data, ctype, code = b"not found: try /metrics\n", "text/plain", 404
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    app_srv = ThreadingHTTPServer((host, app_port), App)
    met_srv = ThreadingHTTPServer(("127.0.0.1", metrics_port), MetricsHandler)
    threading.Thread(target=app_srv.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=met_srv.serve_forever, daemon=True).start()
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:  # the supervisor is gone: so are we
            break
    app_srv.shutdown()
    met_srv.shutdown()


# -------------------------------------------------------------------------------- the load generator


def parse_outcome(status: int | None, exc: BaseException | None) -> str:
    """ok (2xx), timeout (no answer in time), error (anything else: 5xx, refused, reset)."""
    if exc is not None:
        return "timeout" if isinstance(exc, (TimeoutError, socket.timeout)) else "error"
    return "ok" if status is not None and 200 <= status < 300 else "error"


def loadgen(host: str, port: int, rps: float, out: Path, until: float, timeout: float = 2.0) -> None:
    """Steady open-loop load: ``rps`` requests a second from at most 16 in flight, metrics to ``out``."""
    from prometheus_client import (
        CollectorRegistry,
        Counter,
        Histogram,
        disable_created_metrics,
        generate_latest,
    )

    disable_created_metrics()
    reg = CollectorRegistry()
    count = Counter(
        "obslab_demo_client_requests",
        "Requests the demo's load generator sent, by outcome (ok, error, timeout).",
        ["outcome"],
        registry=reg,
    )
    dur = Histogram(
        "obslab_demo_client_request_duration_seconds",
        "Time from the client's connect to the last byte of the answer, as the demo's users see it.",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
        registry=reg,
    )
    for o in ("ok", "error", "timeout"):
        count.labels(o)
    slots = threading.BoundedSemaphore(16)

    def one() -> None:
        t0 = time.perf_counter()
        status, exc = None, None
        try:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                conn.request("GET", "/checkout?items=3")
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            exc = e
        count.labels(parse_outcome(status, exc)).inc()
        dur.observe(time.perf_counter() - t0)
        slots.release()

    def writer() -> None:
        tmp = out.with_suffix(".tmp")
        while time.time() < until:
            with contextlib.suppress(OSError):
                tmp.write_bytes(generate_latest(reg))
                os.replace(tmp, out)
            time.sleep(1.0)

    threading.Thread(target=writer, daemon=True).start()
    parent = os.getppid()
    interval = 1.0 / rps
    nxt = time.monotonic()
    while time.time() < until and os.getppid() == parent:
        nxt += interval
        if slots.acquire(blocking=False):
            threading.Thread(target=one, daemon=True).start()
        else:  # 16 in flight: a real client pool would queue or shed; we shed and count it
            count.labels("timeout").inc()
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            nxt = time.monotonic()


# ------------------------------------------------------------------------------------ the supervisor


def _join_cgroup(cg: sandbox.Cgroup) -> Any:
    def pre() -> None:
        cg.add(os.getpid())

    return pre


def run_demo(port: int, rps: float = DEFAULT_RPS, max_seconds: float | None = None) -> int:
    """Build the sandbox, run service + load generator until SIGTERM (or ``max_seconds``), tear down."""
    import subprocess

    state = state_dir()
    if procs.port_in_use("127.0.0.1", port):
        print(f"obslab demo: port 127.0.0.1:{port} is already in use", file=sys.stderr)
        return 3
    existing = load_demo(state)
    if existing and existing.pid != os.getpid():
        print(f"obslab demo: already running (pid {existing.pid}, port {existing.port})", file=sys.stderr)
        return 3
    ledger = Ledger("demo", state)
    ledger.replay()  # a previous demo of this state dir died without tearing down: undo it first
    iid = sandbox.instance_id(state)
    mode = sandbox.cgroup_mode()
    plan = sandbox.NetPlan(iid)
    base = f"{sandbox.PREFIX}/{iid}"
    demo_dir = state / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    log_dir = demo_dir / "logs"
    me = procs.Proc(
        "demo", os.getpid(), procs.proc_starttime(os.getpid()) or -1, sys.argv, str(demo_dir / "demo.log")
    )
    info = DemoInfo(
        **asdict(me) | {},
        port=port,
        iid=iid,
        cgroup_mode=mode,
        app_cgroup=f"{base}/app",
        svc_cgroup=f"{base}/app/svc",
        netns=plan.netns,
        veth_host=plan.veth_host,
        veth_ns=plan.veth_ns,
        host_addr=plan.host_addr,
        ns_addr=plan.ns_addr,
        app_port=APP_PORT,
        log_dir=str(log_dir),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    register_instance(iid, state)
    demo_file(state).write_text(json.dumps(asdict(info)))
    children: list[procs.Proc] = []
    rc = 0
    try:
        cgs = {}
        for rel in (base, f"{base}/app", f"{base}/app/svc", f"{base}/loadgen"):
            ledger.record("cgroup", rel=rel, mode=mode)
            cgs[rel] = sandbox.cgroup(rel, mode=mode)
            cgs[rel].create()
        img = demo_dir / "logvol.img"
        ledger.record("file", path=str(img))
        with open(img, "wb") as f:
            f.truncate(LOG_VOLUME_MIB << 20)  # sparse: costs the host only what is written
        sandbox.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(img)])
        log_dir.mkdir(exist_ok=True)
        ledger.record("loop", backing=str(img))
        ledger.record("mount", target=str(log_dir))
        sandbox.run(["mount", "-o", "loop", str(img), str(log_dir)])
        ledger.record("netns", name=plan.netns)
        sandbox.create_netns(plan)
        ledger.record("link", name=plan.veth_host)
        sandbox.create_veth(plan)

        py = sys.executable
        svc_argv = [
            py,
            "-m",
            "obslab.labs.demo",
            "serve",
            "--host",
            plan.host_addr,
            "--app-port",
            str(APP_PORT),
        ]
        svc_argv += ["--port", str(port), "--log-dir", str(log_dir)]
        with open(demo_dir / "service.log", "ab") as out:
            svc = subprocess.Popen(
                svc_argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_join_cgroup(cgs[f"{base}/app/svc"]),
            )
        children.append(
            procs.Proc("demo-service", svc.pid, procs.proc_starttime(svc.pid) or -1, svc_argv, "")
        )
        if not procs.wait_http(f"http://127.0.0.1:{port}/health", timeout=30):
            raise RuntimeError("the demo service did not answer on its metrics port")
        until = time.time() + (max_seconds or 10 * 365 * 86400)
        lg_argv = ["ip", "netns", "exec", plan.netns, py, "-m", "obslab.labs.demo", "loadgen"]
        lg_argv += ["--host", plan.host_addr, "--app-port", str(APP_PORT), "--rps", str(rps)]
        lg_argv += ["--out", str(demo_dir / "loadgen.prom"), "--until", str(until)]
        with open(demo_dir / "loadgen.log", "ab") as out:
            lg = subprocess.Popen(
                lg_argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_join_cgroup(cgs[f"{base}/loadgen"])
            )
        children.append(procs.Proc("demo-loadgen", lg.pid, procs.proc_starttime(lg.pid) or -1, lg_argv, ""))
        info.ready = True
        demo_file(state).write_text(json.dumps(asdict(info)))
        print(
            f"obslab demo: serving on {plan.host_addr}:{APP_PORT} (netns {plan.netns}), metrics on "
            f"http://127.0.0.1:{port}/metrics",
            file=sys.stderr,
            flush=True,
        )
        deadline = time.monotonic() + (max_seconds or 10 * 365 * 86400)
        while not stop.wait(1.0):
            if time.monotonic() > deadline:
                break
            if svc.poll() is not None:
                print("obslab demo: the service exited; shutting down", file=sys.stderr)
                rc = 1
                break
            if lg.poll() is not None:
                print("obslab demo: the load generator exited; shutting down", file=sys.stderr)
                rc = 1
                break
    except Exception as e:
        print(f"obslab demo: {e}", file=sys.stderr)
        rc = 1
    finally:
        for child in reversed(children):
            procs.stop(child, timeout=5)
        errors = ledger.replay()
        for err in errors:
            print(f"obslab demo: teardown: {err}", file=sys.stderr)
        with contextlib.suppress(FileNotFoundError):
            demo_file(state).unlink()
        with contextlib.suppress(FileNotFoundError):
            (demo_dir / "loadgen.prom").unlink()
        if not errors:
            unregister_instance(iid)
    return rc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m obslab.labs.demo", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="build the sandbox and run the service with its load generator")
    r.add_argument("--port", type=int, default=None, help="metrics port on 127.0.0.1 (default 19200)")
    r.add_argument("--rps", type=float, default=DEFAULT_RPS)
    r.add_argument("--max-seconds", type=float, default=None, help="stop by itself after this long")
    s = sub.add_parser("serve", help="(internal) the service process")
    s.add_argument("--host", required=True)
    s.add_argument("--app-port", type=int, required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--log-dir", required=True)
    g = sub.add_parser("loadgen", help="(internal) the load generator, run inside the lab netns")
    g.add_argument("--host", required=True)
    g.add_argument("--app-port", type=int, required=True)
    g.add_argument("--rps", type=float, default=DEFAULT_RPS)
    g.add_argument("--out", required=True)
    g.add_argument("--until", type=float, required=True)
    a = p.parse_args(argv)
    if a.cmd == "run":
        from obslab.config import port as config_port

        return run_demo(a.port or config_port("demo"), a.rps, a.max_seconds)
    if a.cmd == "serve":
        serve(a.host, a.app_port, a.port, Path(a.log_dir), state_dir())
        return 0
    loadgen(a.host, a.app_port, a.rps, Path(a.out), a.until)
    return 0


if __name__ == "__main__":
    sys.exit(main())
