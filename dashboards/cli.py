"""`obslab dashboards build|list|queries`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from obslab.clickutil import emit_json, err_console, json_option, out_console
from obslab.errors import CheckFailed, UsageError


@click.group()
def dashboards() -> None:
    """Grafana dashboards as code (grafanalib): build the JSON, list them, show their queries."""


@dashboards.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory to write <name>.json into (default: deploy/grafana/dashboards, which Grafana's "
    "provisioning loads).",
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if the JSON in --out differs from a fresh build."
)
def build(out: Path | None, check: bool) -> None:
    """Build every dashboards/*.dashboard.py into sorted, indented, byte-identical JSON."""
    from obslab.dashboards import build as b

    target = out or b.OUTPUT_DIR
    if check:
        stale = []
        for name, data in b.build_named().values():
            path = target / f"{name}.json"
            if not path.exists() or path.read_text() != b.to_text(data):
                stale.append(str(path))
        if stale:
            raise CheckFailed("out of date (run `obslab dashboards build`): " + ", ".join(stale))
        err_console.print(f"dashboards in {target} are up to date")
        return
    for path in b.write_all(target):
        click.echo(str(path))


@dashboards.command("list")
@json_option
def list_(as_json: bool) -> None:
    """The dashboards: uid, title, number of panels and of queries."""
    from obslab.dashboards import build as b

    rows = []
    for uid, (name, data) in b.build_named().items():
        panels = [p for p in b.iter_panels(data) if p.get("type") != "row"]
        rows.append(
            {
                "uid": uid,
                "file": f"{name}.json",
                "title": data["title"],
                "panels": len(panels),
                "queries": len(b.panel_queries(data)),
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table("uid", "title", "panels", "queries")
    for r in rows:
        table.add_row(r["uid"], r["title"], str(r["panels"]), str(r["queries"]))
    out_console.print(table)


@dashboards.command()
@click.argument("uid")
@click.option(
    "--expand", "do_expand", is_flag=True, help="Fill in $job, $instance, $__rate_interval (all jobs)."
)
@json_option
def queries(uid: str, do_expand: bool, as_json: bool) -> None:
    """Every panel query of dashboard UID (e.g. obslab-use), ready to paste into Prometheus."""
    from obslab.dashboards import build as b

    try:
        data = b.load(uid)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None
    items = [(t, b.expand(q) if do_expand else q) for t, q in b.panel_queries(data)]
    if as_json:
        emit_json([{"panel": t, "expr": q} for t, q in items])
        return
    for title, expr in items:
        click.echo(f"# {title}\n{expr}\n")
