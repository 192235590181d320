"""The labs Python API: what the CLI (`obslab lab ...`) and the web console call.

``catalog() start() current() hint() answer() stop() history() reset()``. Errors are LabError subclasses
carrying ``http_status`` (404 unknown lab, 409 wrong state, 400 bad answer) so the console maps them to 4xx.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from obslab.labs import grader, ledger, runner, sandbox
from obslab.labs.catalog import Lab, cause_options, load_catalog

from obslab import procs
from obslab.paths import state_dir


class LabError(Exception):
    http_status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownLab(LabError):
    http_status = 404


class Conflict(LabError):
    http_status = 409


class BadAnswer(LabError):
    http_status = 400


def _labs() -> dict[str, Lab]:
    return load_catalog()


def _options(labs: dict[str, Lab]) -> dict[str, Any]:
    return {"resource": list(grader.RESOURCES), "signal": list(grader.SIGNALS), "cause": cause_options(labs)}


def _summary(lab: Lab, options: dict[str, Any]) -> dict[str, Any]:
    d = lab.data
    return {
        "id": lab.id,
        "title": d["title"],
        "resource": d["resource"],
        "signal": d["signal"],
        "difficulty": d["difficulty"],
        "duration_seconds": d["duration_seconds"],
        "briefing": d["briefing"].strip(),
        "hints": len(d["hints"]),
        "answer_options": options,
    }


def catalog() -> list[dict[str, Any]]:
    labs = _labs()
    opts = _options(labs)
    return [_summary(lab, opts) for lab in labs.values()]


def _get(lab_id: str) -> Lab:
    labs = _labs()
    if lab_id not in labs:
        raise UnknownLab(f"no lab {lab_id!r} (known: {', '.join(sorted(labs))})")
    return labs[lab_id]


def _is_active(run: dict[str, Any]) -> bool:
    return run.get("state") in runner.ACTIVE and runner_alive_or_starting(run)


def runner_alive_or_starting(run: dict[str, Any]) -> bool:
    if runner.runner_alive():
        return True
    # between writing run.json and the runner recording itself there is a short window
    return run.get("state") == "starting" and time.time() - float(run.get("started_at") or 0) < 5


def current() -> dict[str, Any]:
    """The current (or last) run: state idle|starting|running|stopping|finished, lab, times, hints, attempts."""
    run = runner.read_run()
    if run.get("state") in runner.ACTIVE and not runner_alive_or_starting(run):
        run["state"] = "finished"
        run["end_reason"] = "runner-died"
        run["errors"] = [
            "the lab runner stopped unexpectedly: `obslab lab stop` or `obslab lab reset` reverts"
        ]
    out = dict(run)
    out["attempts"] = len(run.get("attempts") or [])
    out["attempt_log"] = run.get("attempts") or []
    if run.get("state") not in ("idle", None):
        out["remaining_seconds"] = max(0.0, float(run.get("deadline") or 0) - time.time())
        if run.get("solved") or run.get("state") == "finished":
            out["debrief"] = _debrief(run.get("lab"))
    return out


def _debrief(lab_id: Any) -> str | None:
    try:
        lab = _get(str(lab_id))
    except LabError:
        return None
    d = lab["debrief"]
    cli = "\n".join(f"  {c['command']}  -> {c['look_for']}" for c in lab["cli_check"])
    return localize(
        f"Cause: {lab['answer']['cause_label']}.\n\nMechanism: {d['mechanism'].strip()}\n\n"
        f"Fix: {d['fix'].strip()}\n\nPrevention: {d['prevention'].strip()}\n\nSee it with:\n{cli}"
    )


def localize(text: str) -> str:
    """Put this machine's names into lab text: ``obslab-XXXX`` (netns/veth), ``/var/lib/obslab`` (state dir)."""
    state = state_dir()
    return text.replace("obslab-XXXX", f"{sandbox.PREFIX}-{sandbox.instance_id(state)}").replace(
        "/var/lib/obslab", str(state)
    )


def start(lab_id: str, duration: float | None = None) -> dict[str, Any]:
    """Start ``lab_id`` in a detached runner; returns current(). 409 if a lab is running."""
    lab = _get(lab_id)
    cap = float(lab["duration_seconds"])
    dur = cap if duration is None else float(duration)
    if not 10 <= dur <= cap:
        raise LabError(f"duration must be between 10 and {cap:.0f} seconds")
    with runner.locked():
        run = runner.read_run()
        if _is_active(run):
            raise Conflict(f"lab {run.get('lab')!r} is already {run['state']}: `obslab lab stop` first")
        if run.get("state") in runner.ACTIVE:  # a dead runner's leftovers: undo them before a new run
            _recover()
        now = time.time()
        runner.write_run(
            {
                "state": "starting",
                "lab": lab_id,
                "title": lab["title"],
                "started_at": now,
                "deadline": now + dur,
                "duration": dur,
                "hints_used": 0,
                "hints_total": len(lab["hints"]),
                "attempts": [],
                "solved": False,
                "score": None,
                "faults": {n: False for n in lab.fault_names()},
            }
        )
    argv = [sys.executable, "-m", "obslab.labs.runner", lab_id, "--duration", str(dur)]
    procs.spawn("lab-runner", argv, runner.lab_dir() / "runner.log", record=runner.runner_record())
    return current()


def _running() -> dict[str, Any]:
    run = runner.read_run()
    if not _is_active(run):
        raise Conflict("no lab is running: `obslab lab start ID`")
    return run


def hint() -> dict[str, Any]:
    """The next hint of the ladder (the last one again once all are used)."""
    _running()
    lab_id = runner.read_run().get("lab")
    hints = _get(str(lab_id))["hints"]

    def _inc(r: dict[str, Any]) -> None:
        r["hints_used"] = min(len(hints), int(r.get("hints_used") or 0) + 1)

    run = runner.update_run(_inc)
    level = run["hints_used"]
    return {"level": level, "of": len(hints), "text": hints[level - 1]}


def answer(resource: str, signal: str, cause: str) -> dict[str, Any]:
    """Grade a diagnosis. {"correct", "feedback", "score" (once solved), "debrief" (once solved)}."""
    labs = _labs()
    opts = _options(labs)
    if resource not in opts["resource"]:
        raise BadAnswer(f"resource must be one of {', '.join(opts['resource'])}")
    if signal not in opts["signal"]:
        raise BadAnswer(f"signal must be one of {', '.join(opts['signal'])}")
    if cause not in {c["id"] for c in opts["cause"]}:
        raise BadAnswer(f"unknown cause {cause!r}: `obslab lab status` lists the cause ids")
    run = _running()
    if run.get("solved"):
        raise Conflict("this lab is already solved: `obslab lab stop` reverts it")
    lab = labs[str(run["lab"])]
    verdict = grader.grade(
        lab["answer"]["resource"], lab.accepted_signals, lab["answer"]["cause"], resource, signal, cause
    )

    def _rec(r: dict[str, Any]) -> None:
        r.setdefault("attempts", []).append(
            {
                "at": time.time(),
                "resource": resource,
                "signal": signal,
                "cause": cause,
                "correct": verdict.correct,
            }
        )
        if verdict.correct:
            r["solved"] = True
            wrong = sum(1 for a in r["attempts"] if not a["correct"])
            r["solved_after_seconds"] = time.time() - float(r["started_at"])
            r["score"] = grader.score(int(r.get("hints_used") or 0), wrong, r["solved_after_seconds"])

    run = runner.update_run(_rec)
    return {
        "correct": verdict.correct,
        "feedback": verdict.feedback,
        "score": run.get("score") if verdict.correct else None,
        "debrief": _debrief(lab.id) if verdict.correct else None,
    }


def stop(timeout: float = 90.0) -> dict[str, Any]:
    """Stop the running lab and revert its faults; returns the finished run (with its debrief)."""
    run = runner.read_run()
    if run.get("state") not in runner.ACTIVE:
        raise Conflict("no lab is running")
    proc = procs.Proc.load(runner.runner_record())
    if proc and proc.alive():
        procs.stop(proc, timeout=timeout)
        deadline = time.monotonic() + 10
        while runner.read_run().get("state") != "finished" and time.monotonic() < deadline:
            time.sleep(0.1)
    if runner.read_run().get("state") != "finished":
        _recover()
    return current()


def _recover() -> list[str]:
    """Undo a dead runner's faults (every lab ledger, then the runner's) and close the run."""
    errors: list[str] = []
    for path in sorted(ledger.ledger_dir().glob("lab-*.jsonl")):
        errors += ledger.Ledger(path.stem).replay()
    errors += ledger.Ledger("runner").replay()
    runner.finish(errors, reason="recovered")
    return errors


def reset() -> dict[str, Any]:
    """Undo everything: stop the runner, replay every ledger (the demo's if it is dead), sweep prefixes."""
    proc = procs.Proc.load(runner.runner_record())
    if proc and proc.alive():
        procs.stop(proc, timeout=30)
    errors = []
    replayed = []
    for path in sorted(ledger.ledger_dir().glob("*.jsonl")):
        if path.stem == "demo":
            continue
        replayed.append(path.stem)
        errors += ledger.Ledger(path.stem).replay()
    from obslab.labs.demo import load_demo

    demo = load_demo()
    if demo is None:
        if (ledger.ledger_dir() / "demo.jsonl").exists():
            replayed.append("demo")
        errors += ledger.Ledger("demo").replay()
    else:
        errors += _sweep_lab_objects(demo)
    removed = ledger.sweep()
    run = runner.read_run()
    if run.get("state") in runner.ACTIVE:
        runner.finish(errors, reason="reset")
    with_errors = [e for e in errors if e]
    return {"replayed": replayed, "swept": removed, "errors": with_errors}


def _sweep_lab_objects(demo: Any) -> list[str]:
    """With the demo alive: remove what labs add to its sandbox (extra cgroups, qdisc, nft tables)."""
    errors: list[str] = []
    keep = {demo.app_cgroup, demo.svc_cgroup, demo.app_cgroup.rsplit("/", 1)[0] + "/loadgen"}
    base = sandbox.cgroup(demo.app_cgroup.rsplit("/", 1)[0], mode=demo.cgroup_mode)
    for d in base.dirs():
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            rel = str(sub.relative_to(d.parents[len(base.rel.split("/")) - 1]))
            if rel not in keep:
                try:
                    sandbox.cgroup(rel, mode=demo.cgroup_mode).remove()
                except sandbox.SandboxError as e:
                    errors.append(str(e))
    app = sandbox.cgroup(demo.app_cgroup, mode=demo.cgroup_mode)
    for knob, value in (app.cpu_quota_knob(None), app.memory_limit_knob(None)):
        try:
            app.write(knob, value)  # the demo never limits itself: any limit is a lab's
        except OSError as e:
            errors.append(f"{app.rel} {knob}: {e}")
    sandbox.delete_qdisc(demo.veth_host)
    for family, table in sandbox.nft_tables(demo.netns):
        if table.startswith(sandbox.PREFIX + "_"):
            sandbox.delete_nft_table(family, table, demo.netns)
    return errors


def history() -> list[dict[str, Any]]:
    path = runner.lab_dir() / "history.jsonl"
    out = []
    try:
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    except OSError:
        pass
    return out
