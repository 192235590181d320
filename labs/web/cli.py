"""`obslab console [--listen ADDR]`: the lab console, served by waitress."""

from __future__ import annotations

import os
import secrets

import click

from obslab import config
from obslab.errors import EnvironmentMissing, UsageError
from obslab.procs import port_in_use


def login_url(url: str, token: str) -> str:
    return f"{url}/?token={token}"


@click.command()
@click.option(
    "--listen",
    default=None,
    metavar="ADDR",
    help="HOST:PORT to bind (default 127.0.0.1:19300, or OBSLAB_CONSOLE_PORT). A non-loopback address "
    "needs OBSLAB_TOKEN set.",
)
@click.option(
    "--prometheus",
    "prometheus_url",
    default=None,
    metavar="URL",
    help="The stack's Prometheus (default http://127.0.0.1:19090, or OBSLAB_PROMETHEUS_PORT).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also accept requests for this Host name (repeatable), e.g. the VM's address when binding 0.0.0.0. "
    "Others are refused (DNS rebinding protection).",
)
@click.option("--threads", default=8, show_default=True, help="waitress worker threads.")
def console(
    listen: str | None, prometheus_url: str | None, allow_hosts: tuple[str, ...], threads: int
) -> None:
    """The lab console in your browser: catalog, lab runs with live charts, hints, answers, history.

    Every page and API call needs a token: OBSLAB_TOKEN, or one generated now and printed as a URL to
    open (Jupyter-style). The JSON API takes `Authorization: Bearer TOKEN`.
    """
    addr = config.parse_listen(listen or config.default_listen("console"))
    token = os.environ.get("OBSLAB_TOKEN", "")
    if not addr.is_loopback and not token:
        raise UsageError(
            f"refusing to bind {addr} (not loopback) with a generated token: set OBSLAB_TOKEN to a long "
            "random secret first (e.g. OBSLAB_TOKEN=$(openssl rand -hex 24)), or bind 127.0.0.1"
        )
    if token and len(token) < 16:
        raise UsageError("OBSLAB_TOKEN is too short: use at least 16 random characters")
    if port_in_use(addr.host, addr.port):
        raise EnvironmentMissing(
            f"console port {addr} is already in use (set --listen or OBSLAB_CONSOLE_PORT)"
        )
    generated = not token
    token = token or secrets.token_urlsafe(24)

    import waitress
    from obslab.labs.web.app import create_app

    prom = prometheus_url or f"http://127.0.0.1:{config.port('prometheus')}"
    links = {
        "Prometheus": prom,
        "Alertmanager": f"http://127.0.0.1:{config.port('alertmanager')}",
        "Grafana": f"http://127.0.0.1:{config.port('grafana')}",
    }
    app = create_app(token, bind_host=addr.host, prometheus_url=prom, links=links, extra_hosts=allow_hosts)
    click.echo(f"obslab console on {addr.url}", err=True)
    if generated:
        click.echo(f"open: {login_url(addr.url, token)}", err=True)
    else:
        click.echo("token: from OBSLAB_TOKEN", err=True)
    waitress.serve(app, host=addr.host, port=addr.port, threads=threads, ident="obslab-console", _quiet=True)
