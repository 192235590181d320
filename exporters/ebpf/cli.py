"""`obslab exporter ebpf`: attach the tracepoint probes and serve their maps on /metrics.

The ``--probe.NAME`` / ``--no-probe.NAME`` flags are generated from the probe registry, so adding a probe
module adds its flag.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import click
from obslab.exporters.ebpf.kernel import has_bpf_privileges, tracefs_root
from obslab.exporters.ebpf.loader import ProbeSet
from obslab.exporters.ebpf.probes import PROBES
from obslab.exporters.server import bind, landing_page, make_app, serve_forever
from prometheus_client import generate_latest

from obslab.clickutil import Toggles, configure_logging, toggle_command
from obslab.config import default_listen, parse_listen
from obslab.errors import EnvironmentMissing, UsageError

log = logging.getLogger("obslab.exporters.ebpf")


TOGGLES = Toggles(
    "probe",
    {n: (f"{i.help} Tracepoints: {', '.join(i.tracepoints)}.", i.default_enabled) for n, i in PROBES.items()},
)


def enabled_probes(flags: dict[str, bool | None]) -> list[str]:
    """Probes to run: each probe's default, overridden by an explicit ``--probe.X`` / ``--no-probe.X``."""
    return [
        name
        for name, info in PROBES.items()
        if (flags.get(name) if flags.get(name) is not None else info.default_enabled)
    ]


def check_environment() -> None:
    """Exit 3 with one line when this process cannot load BPF programs."""
    if not has_bpf_privileges():
        raise EnvironmentMissing(
            "the eBPF exporter needs root or the CAP_BPF and CAP_PERFMON capabilities "
            "(run it with sudo, or: setcap cap_bpf,cap_perfmon+ep on the Python binary)"
        )
    try:
        import bcc  # noqa: F401
    except ImportError:
        raise EnvironmentMissing(
            "bcc's Python module is not importable: run `make setup` (installs python3-bpfcc)"
        ) from None
    if tracefs_root() is None:
        raise EnvironmentMissing(
            "tracefs is not mounted: mount -t tracefs nodev /sys/kernel/tracing (see `obslab doctor`)"
        )


def _ebpf(listen: str | None, once: bool, window: float | None, log_level: str, **flags: Any) -> None:
    """Export kernel tracepoint metrics: run-queue and block IO latency, TCP retransmits and connect
    latency, OOM kills, syscalls, execs, direct reclaim, softirq time, packet drops.

    Serves /metrics and a landing page at / on LISTEN (default 127.0.0.1:19101, or
    OBSLAB_EBPF_EXPORTER_PORT). With --once, attaches for --window seconds (default 5), prints one
    exposition on stdout, detaches and exits. Needs root (or CAP_BPF + CAP_PERFMON).
    Exit codes: 2 bad flags or an unknown probe, 3 no BPF privileges or the port is taken.
    """
    configure_logging(log_level)
    if window is not None and not once:
        raise UsageError("--window only makes sense with --once")
    if window is not None and window <= 0:
        raise UsageError(f"--window {window}: must be a positive number of seconds")
    names = enabled_probes(TOGGLES.explicit(flags))
    if not names:
        raise UsageError("every probe is disabled: nothing to export")
    address = None if once else parse_listen(listen or default_listen("ebpf_exporter"))
    check_environment()

    probes = ProbeSet([PROBES[n].cls() for n in names])
    server = None
    if address is not None:
        # Bind before compiling: a taken port fails in milliseconds, not after the BPF build.
        def page() -> bytes:
            rows = []
            for n, info in PROBES.items():
                st = probes.status.get(n)
                state = (
                    "disabled" if st is None else "attached" if st.attached else f"NOT attached: {st.reason}"
                )
                rows.append((n, state, f"{info.help} ({', '.join(info.tracepoints)})"))
            return landing_page(
                "obslab eBPF exporter",
                "Kernel tracepoint metrics (bcc) for the obslab lab: latency distributions and events "
                "that /proc cannot show.",
                rows,
            )

        server = bind(address, make_app(probes.registry(), page), "eBPF exporter")
    try:
        probes.start()
    except BaseException:
        if server is not None:
            server.server_close()
        probes.close()
        raise
    attached = [st.name for st in probes.status.values() if st.attached]
    log.info(
        "eBPF probes attached in %.2fs: %s (%d of %d)",
        probes.compile_seconds,
        ", ".join(attached) or "none",
        len(attached),
        len(names),
    )
    if once:
        try:
            time.sleep(window if window is not None else 5.0)
            sys.stdout.write(generate_latest(probes.registry()).decode())
        finally:
            probes.close()
        return
    assert server is not None
    log.info("eBPF exporter listening on %s", address.url if address else "")
    serve_forever(server, on_stop=probes.close)


def _make_command() -> click.Command:
    params: list[click.Parameter] = [
        click.Option(["--listen"], metavar="ADDR", help="HOST:PORT to serve on [default: 127.0.0.1:19101]."),
        click.Option(["--once"], is_flag=True, help="Attach, collect for --window seconds, print, exit."),
        click.Option(
            ["--window"],
            type=float,
            metavar="SECONDS",
            help="With --once: how long to collect before printing [default: 5].",
        ),
    ]
    return toggle_command("ebpf", _ebpf, params, TOGGLES)


ebpf = _make_command()
