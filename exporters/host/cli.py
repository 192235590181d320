"""`obslab exporter host`: serve the host collectors on /metrics, or print one exposition (--once).

The ``--collector.NAME`` / ``--no-collector.NAME`` flags are generated from the collector registry
(built-in modules plus ``obslab.collectors`` entry-point plugins), so adding a collector adds its flag.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from obslab.exporters import host as _builtin  # noqa: F401  (imports and registers every collector)
from obslab.exporters import registry
from obslab.exporters.registry import Paths, Scrape, as_prometheus_collector
from obslab.exporters.server import bind, landing_page, make_app, serve_forever
from prometheus_client import CollectorRegistry, generate_latest

from obslab.clickutil import Toggles, configure_logging, toggle_command
from obslab.config import default_listen, parse_listen

log = logging.getLogger("obslab.exporters")

registry.load_plugins()
COLLECTORS = registry.available()


TOGGLES = Toggles("collector", {n: (i.help, i.default_enabled) for n, i in COLLECTORS.items()})


def enabled_collectors(flags: dict[str, bool | None], disable_defaults: bool) -> list[str]:
    """Collectors to run: defaults (unless ``disable_defaults``), adjusted by explicit flags."""
    out = []
    for name, info in COLLECTORS.items():
        explicit = flags.get(name)
        on = explicit if explicit is not None else (info.default_enabled and not disable_defaults)
        if on:
            out.append(name)
    return out


def build_registry(names: list[str], paths: Paths) -> tuple[CollectorRegistry, Scrape]:
    scrape = Scrape({n: COLLECTORS[n].factory(paths) for n in names})
    reg = CollectorRegistry(auto_describe=False)
    reg.register(as_prometheus_collector(scrape))
    return reg, scrape


def _host(
    listen: str | None,
    once: bool,
    disable_defaults: bool,
    procfs: str,
    sysfs: str,
    rootfs: str,
    log_level: str,
    **flags: Any,
) -> None:
    """Export host metrics from /proc and /sys: CPU, memory, PSI, disks, filesystems, network, processes
    and cgroups.

    Serves /metrics (Prometheus text format) and a landing page at / on LISTEN (default 127.0.0.1:19100,
    or OBSLAB_HOST_EXPORTER_PORT). With --once, prints one exposition on stdout and exits.
    Exit codes: 2 bad flags or an unknown collector, 3 the port is taken.
    """
    configure_logging(log_level)
    names = enabled_collectors(TOGGLES.explicit(flags), disable_defaults)
    paths = Paths(procfs=procfs, sysfs=sysfs, rootfs=rootfs)
    reg, _scrape = build_registry(names, paths)
    if once:
        sys.stdout.write(generate_latest(reg).decode())
        return
    address = parse_listen(listen or default_listen("host_exporter"))
    rows = [(n, "enabled" if n in names else "disabled", COLLECTORS[n].help) for n in COLLECTORS]
    page = landing_page(
        "obslab host exporter",
        "Host metrics from /proc and /sys for the obslab lab: the USE signals per resource.",
        rows,
    )
    server = bind(address, make_app(reg, lambda: page), "host exporter")
    log.info("host exporter listening on %s (collectors: %s)", address.url, ", ".join(names))
    serve_forever(server)


def _make_command() -> click.Command:
    params: list[click.Parameter] = [
        click.Option(["--listen"], metavar="ADDR", help="HOST:PORT to serve on [default: 127.0.0.1:19100]."),
        click.Option(["--once"], is_flag=True, help="Print one exposition on stdout and exit."),
        click.Option(
            ["--collector.disable-defaults", "disable_defaults"],
            is_flag=True,
            help="Start with every collector off; enable some with --collector.NAME.",
        ),
        click.Option(
            ["--path.procfs", "procfs"], default="/proc", show_default=True, help="procfs mount point."
        ),
        click.Option(["--path.sysfs", "sysfs"], default="/sys", show_default=True, help="sysfs mount point."),
        click.Option(
            ["--path.rootfs", "rootfs"],
            default="/",
            show_default=True,
            help="Root of the filesystems to statvfs.",
        ),
    ]
    return toggle_command("host", _host, params, TOGGLES)


host = _make_command()
