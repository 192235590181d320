"""The `obslab` command: wires the sub-commands, each owned by its area of the code.

Exit codes: 0 ok, 1 a check failed or a wrong answer, 2 usage, 3 something the machine lacks.
"""

from __future__ import annotations

import click

from obslab import __version__
from obslab.clickutil import LazyGroup

COMMANDS = {
    "doctor": "obslab.doctor:doctor",
    "exporter": "obslab.exporters.cli:exporter",
    "dashboards": "obslab.dashboards.cli:dashboards",
    "up": "obslab.stack:up",
    "down": "obslab.stack:down",
    "status": "obslab.stack:status",
    "lab": "obslab.labs.cli:lab",
    "console": "obslab.labs.web.cli:console",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="obslab")
def cli() -> None:
    """obslab: an observability lab for Linux.

    Exporters turn /proc, /sys and eBPF tracepoints into Prometheus metrics; guided labs inject a real
    fault (CPU, memory, disk, network) that you diagnose from dashboards and the classic Linux tools.

    Start here: `obslab doctor` (what this machine can do), `obslab up` (the local stack),
    `obslab lab list` (the labs).
    """


def main() -> None:
    cli(prog_name="obslab")
