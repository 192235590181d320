"""`obslab lab ...`: a thin layer over obslab.labs.api (data on stdout, messages on stderr)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from obslab.clickutil import emit_json, err_console, json_option, out_console
from obslab.errors import CheckFailed, EnvironmentMissing, ExitCode, UsageError

F = TypeVar("F", bound=Callable[..., Any])


def _needs_root() -> None:
    if os.geteuid() != 0:
        raise EnvironmentMissing(
            "labs create cgroups, namespaces and qdiscs: run as root (sudo obslab lab ...)"
        )


def _api_errors(fn: F) -> F:
    """LabError → exit 2 (unknown lab, bad answer) or 1 (wrong state), with its message."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from obslab.labs.api import LabError

        try:
            return fn(*args, **kwargs)
        except LabError as e:
            if e.http_status == 409:
                raise CheckFailed(e.message) from None
            raise UsageError(e.message) from None

    return wrapper  # type: ignore[return-value]


@click.group()
def lab() -> None:
    """Guided fault-injection labs: a real fault hits the demo service; find it, answer, get graded.

    \b
    obslab lab list                      the labs
    obslab lab start cpu-hog             start one (a countdown; Ctrl-C stops and reverts)
    obslab lab hint                      the next hint (costs points)
    obslab lab answer --resource cpu --signal utilization --cause runaway-batch-job
    obslab lab stop                      revert the fault now
    obslab lab reset                     undo everything obslab did (after a crash or reboot)
    """


@lab.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """List the labs (id, resource, difficulty, title)."""
    from obslab.labs import api

    labs = api.catalog()
    if as_json:
        emit_json(labs)
        return
    t = Table("id", "resource", "difficulty", "minutes", "title")
    for lab_ in labs:
        t.add_row(
            lab_["id"],
            lab_["resource"],
            lab_["difficulty"],
            str(lab_["duration_seconds"] // 60),
            lab_["title"],
        )
    out_console.print(t)


@lab.command()
@click.argument("lab_id")
@click.option("--duration", type=float, default=None, help="Seconds (default: the lab's cap).")
@click.option("--detach", is_flag=True, help="Return at once; the lab runs in the background.")
@json_option
@_api_errors
def start(lab_id: str, duration: float | None, detach: bool, as_json: bool) -> None:
    """Start LAB_ID: its fault hits the demo service until the deadline, `stop` or Ctrl-C."""
    from obslab.labs import api

    _needs_root()
    run = api.start(lab_id, duration)
    info = next(x for x in api.catalog() if x["id"] == lab_id)
    if as_json:
        emit_json(run)
    else:
        briefing = " ".join(info["briefing"].split())
        err_console.print(f"[bold]{info['title']}[/bold]\n\n{briefing}\n")
        causes = ", ".join(c["id"] for c in info["answer_options"]["cause"])
        err_console.print(
            f"Answer with: obslab lab answer --resource R --signal S --cause C\n  causes: {causes}\n"
        )
    if detach or as_json or not sys.stderr.isatty():
        return
    _countdown()


def _countdown() -> None:
    from obslab.labs import api
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=err_console
        ) as progress:
            run = api.current()
            total = float(run.get("duration") or 1)
            task = progress.add_task(f"lab {run.get('lab')}: {run['state']}", total=total)
            while run["state"] in ("starting", "running", "stopping"):
                left = float(run.get("remaining_seconds") or 0)
                desc = f"lab {run.get('lab')}: {run['state']} (hints {run.get('hints_used', 0)}, answers {run.get('attempts', 0)})"
                progress.update(task, completed=total - left, description=desc)
                time.sleep(0.5)
                run = api.current()
    except KeyboardInterrupt:
        err_console.print("stopping and reverting ...")
        run = api.stop()
    err_console.print(f"lab {run.get('lab')} {run['state']} ({run.get('end_reason', '')})")
    if run.get("debrief"):
        err_console.print(run["debrief"], highlight=False, markup=False)


@lab.command()
@json_option
def status(as_json: bool) -> None:
    """The current run: state, time left, hints used, answers."""
    from obslab.labs import api

    run = api.current()
    if as_json:
        emit_json(run)
        return
    if run["state"] == "idle":
        click.echo("no lab has run yet: `obslab lab list`, `obslab lab start ID`")
        return
    click.echo(f"lab {run.get('lab')}: {run['state']}")
    if run["state"] != "finished":
        click.echo(f"  time left: {run.get('remaining_seconds', 0):.0f}s")
    click.echo(
        f"  hints used: {run.get('hints_used', 0)} of {run.get('hints_total', '?')}, answers: {run['attempts']}"
    )
    if run.get("solved"):
        click.echo(f"  solved, score {run.get('score')}")
    for err in run.get("errors") or []:
        click.echo(f"  error: {err}")


@lab.command()
@json_option
@_api_errors
def hint(as_json: bool) -> None:
    """Show the next hint (each costs 15 points)."""
    from obslab.labs import api

    h = api.hint()
    if as_json:
        emit_json(h)
    else:
        click.echo(f"hint {h['level']}/{h['of']}: {h['text']}")


@lab.command()
@click.option("--resource", required=True, help="cpu, memory, disk or network")
@click.option("--signal", required=True, help="utilization, saturation or errors")
@click.option("--cause", required=True, help="a cause id (see `obslab lab list --json`)")
@json_option
@_api_errors
def answer(resource: str, signal: str, cause: str, as_json: bool) -> None:
    """Submit a diagnosis: exit 0 if right (with the debrief), 1 if wrong."""
    from obslab.labs import api

    r = api.answer(resource, signal, cause)
    if as_json:
        emit_json(r)
    else:
        click.echo(r["feedback"])
        if r["correct"]:
            click.echo(f"score: {r['score']}\n\n{r['debrief']}\n\n`obslab lab stop` reverts the fault now.")
    if not r["correct"]:
        sys.exit(ExitCode.CHECK_FAILED)


@lab.command()
@json_option
@_api_errors
def stop(as_json: bool) -> None:
    """Stop the running lab and revert its faults."""
    from obslab.labs import api

    run = api.stop()
    if as_json:
        emit_json(run)
    else:
        click.echo(f"lab {run.get('lab')} stopped and reverted")
        for err in run.get("errors") or []:
            click.echo(f"  error: {err}", err=True)


@lab.command()
@json_option
def reset(as_json: bool) -> None:
    """Undo everything labs did: replay the ledgers backwards, sweep obslab-named leftovers. Idempotent."""
    from obslab.labs import api

    _needs_root()
    r = api.reset()
    if as_json:
        emit_json(r)
    else:
        click.echo(
            f"replayed: {', '.join(r['replayed']) or 'nothing'}; swept: {', '.join(r['swept']) or 'nothing'}"
        )
        for err in r["errors"]:
            click.echo(f"  error: {err}", err=True)
    if r["errors"]:
        sys.exit(ExitCode.CHECK_FAILED)


@lab.command()
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every lab in the catalog.")
@click.option("--duration", type=float, default=180, show_default=True, help="Cap per lab (it stops sooner).")
@json_option
def selftest(ids: tuple[str, ...], all_: bool, duration: float, as_json: bool) -> None:
    """Prove labs end to end: evidence holds in a real Prometheus, answers graded, nothing left behind."""
    from obslab.labs.catalog import load_catalog
    from obslab.labs.selftest import selftest as run_selftest

    _needs_root()
    known = load_catalog()
    if not ids and not all_:
        raise UsageError("name lab ids or pass --all")
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UsageError(f"unknown lab(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    results = run_selftest(list(ids) or None, duration=duration, log=lambda s: err_console.print(s))
    if as_json:
        emit_json([r.as_dict() for r in results])
    else:
        for r in results:
            mark = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
            err_console.print(f"{mark} {r.id} ({r.seconds:.0f}s)")
            for c in r.checks:
                if not c["ok"]:
                    err_console.print(f"   failed: {c['name']}: {c['detail'][:300]}")
            for x in r.residue:
                err_console.print(f"   left behind: {x}")
    if not all(r.passed for r in results):
        sys.exit(ExitCode.CHECK_FAILED)


@lab.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Validate lab files (default: the whole catalog); a bad one prints FILE:LINE: FIELD: problem, exit 1."""
    from obslab.labs.catalog import CATALOG_DIR, LabFileError, load_lab_file

    paths = list(files) or sorted(CATALOG_DIR.glob("*.yaml"))
    bad = 0
    for p in paths:
        try:
            load_lab_file(p)
            click.echo(f"ok {p}")
        except LabFileError as e:
            click.echo(str(e), err=True)
            bad += 1
    if bad:
        sys.exit(ExitCode.CHECK_FAILED)


@lab.command()
@click.option("--port", type=int, default=None, help="Metrics port on 127.0.0.1 (default 19200).")
@click.option("--max-seconds", type=float, default=None, help="Stop by itself after this long.")
def demo(port: int | None, max_seconds: float | None) -> None:
    """Run the demo service (sandbox, service, load generator) in the foreground until Ctrl-C."""
    from obslab.labs.demo import run_demo

    from obslab import config

    _needs_root()
    sys.exit(run_demo(port or config.port("demo"), max_seconds=max_seconds))
