"""HTTP serving for the exporters: ``/metrics`` (prometheus_client exposition) and a landing page at ``/``."""

from __future__ import annotations

import html
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from obslab import __version__
from obslab.config import Listen
from obslab.errors import EnvironmentMissing

log = logging.getLogger("obslab.exporters")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _V6Server(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: keep logs quiet
        log.debug("%s " + format, self.address_string(), *args)


def landing_page(title: str, description: str, rows: Iterable[tuple[str, str, str]]) -> bytes:
    """A small HTML page: what this exporter is, a link to /metrics, and a table (name, state, help)."""
    body = "".join(
        f"<tr><td><code>{html.escape(n)}</code></td><td>{html.escape(s)}</td><td>{html.escape(h)}</td></tr>"
        for n, s, h in rows
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;color:#222}"
        "td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(description)}</p>"
        "<p><a href='metrics'>Metrics</a> (Prometheus text format)</p>"
        f"<table><tr><th>name</th><th>state</th><th>what it exports</th></tr>{body}</table>"
        f"<p><small>obslab {html.escape(__version__)}</small></p></body></html>"
    ).encode()


def make_app(registry: CollectorRegistry, landing: Callable[[], bytes]) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")])
            return [b"only GET and HEAD\n"]
        if path == "/metrics":
            output = generate_latest(registry)
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [output]
        if path in ("/", ""):
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [landing()]
        if path in ("/-/healthy", "/health"):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics\n"]

    return app


def bind(listen: Listen, app: Callable[..., Iterable[bytes]], component: str) -> WSGIServer:
    """Bind the server or raise EnvironmentMissing (exit 3) naming the component and address."""
    server_class = _V6Server if ":" in listen.host else _ThreadingWSGIServer
    try:
        return make_server(
            listen.host, listen.port, app, server_class=server_class, handler_class=_QuietHandler
        )
    except OSError as e:
        reason = "address already in use" if e.errno == 98 else e.strerror
        raise EnvironmentMissing(f"{component}: cannot listen on {listen}: {reason}") from None


def serve_forever(server: WSGIServer, on_stop: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down cleanly (running ``on_stop``, e.g. detach probes)."""
    stop = threading.Event()

    def _handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
    thread.start()
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        if on_stop:
            on_stop()
