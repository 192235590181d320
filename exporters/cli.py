"""`obslab exporter host|ebpf`."""

from __future__ import annotations

import click

from obslab.clickutil import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={"host": "obslab.exporters.host.cli:host", "ebpf": "obslab.exporters.ebpf.cli:ebpf"},
)
def exporter() -> None:
    """Run an exporter: `host` (/proc and /sys) or `ebpf` (kernel tracepoints, needs root)."""
