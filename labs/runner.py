"""The lab runner: a detached process that applies a lab's faults, holds them until the deadline or a stop,
and reverts them. ``python -m obslab.labs.runner LAB_ID --duration S`` (started by ``api.start``).

Run state lives in ``state_dir()/lab/run.json`` (read by the API, the CLI, the console and the demo's
``obslab_lab_*`` metrics); the runner's own Proc record in ``lab/runner.json``; each fault's ledger in
``ledger/lab-<fault>.jsonl`` and the runner's (a demo it started, the lab files) in ``ledger/runner.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from obslab.labs import demo as demo_mod
from obslab.labs.catalog import Lab, load_catalog
from obslab.labs.injectors import INJECTORS, FaultContext, load_all
from obslab.labs.ledger import Ledger

from obslab import config, procs
from obslab.paths import state_dir

ACTIVE = ("starting", "running", "stopping")


def lab_dir() -> Path:
    d = state_dir() / "lab"
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_file() -> Path:
    return lab_dir() / "run.json"


def runner_record() -> Path:
    return lab_dir() / "runner.json"


def files_dir() -> Path:
    return lab_dir() / "files"


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Serialise read-modify-write of run.json between the runner, the CLI and the console."""
    with open(lab_dir() / "lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_run() -> dict[str, Any]:
    try:
        data = json.loads(run_file().read_text())
    except (OSError, ValueError):
        return {"state": "idle"}
    return data if isinstance(data, dict) else {"state": "idle"}


def write_run(run: dict[str, Any]) -> None:
    tmp = run_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(run, indent=1, sort_keys=True))
    os.replace(tmp, run_file())


def update_run(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    with locked():
        run = read_run()
        fn(run)
        write_run(run)
        return run


def runner_alive() -> bool:
    p = procs.Proc.load(runner_record())
    return bool(p and p.alive())


def fault_ledger(fault: str) -> Ledger:
    return Ledger(f"lab-{fault}")


def ensure_demo(ledger: Ledger, max_seconds: float) -> tuple[demo_mod.DemoInfo, bool]:
    """The running demo of this state dir, or one started (and ledgered) for this run. (info, started_here)."""
    info = demo_mod.load_demo()
    if info is not None:
        return demo_mod.wait_ready(timeout=60), False
    port = config.port("demo")
    if procs.port_in_use("127.0.0.1", port):
        port = procs.free_port()
    proc = demo_mod.spawn_demo(port, max_seconds=max_seconds)
    ledger.record("proc", **proc.__dict__)
    return demo_mod.wait_ready(timeout=90, proc=proc), True


def run_lab(lab: Lab, duration: float) -> int:
    """Apply, hold, revert. Returns 0 when every fault applied and reverted cleanly."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    load_all()
    runner_ledger = Ledger("runner")
    rc = 0
    contexts: list[tuple[str, FaultContext]] = []
    errors: list[str] = []
    deadline = time.time() + duration
    try:
        runner_ledger.record("file", path=str(files_dir()))
        demo, started = ensure_demo(runner_ledger, max_seconds=duration + 120)
        update_run(lambda r: r.update(demo_port=demo.port, demo_started_by_lab=started))
        for fault in lab["faults"]:
            if stop.is_set():
                break
            name = fault.get("name") or fault["injector"]
            inj = INJECTORS[fault["injector"]]
            params = inj.validate(fault.get("params") or {})
            ctx = FaultContext(lab.id, name, fault_ledger(name), demo, deadline + 5, files_dir())
            contexts.append((fault["injector"], ctx))
            inj().apply(ctx, params)
            set_fault(name, True)
        if not stop.is_set():
            update_run(lambda r: r.update(state="running", deadline=deadline))
        while time.time() < deadline and not stop.wait(0.5):
            pass
    except Exception as e:
        errors.append(f"{type(e).__name__}: {e}")
        rc = 1
    finally:
        update_run(lambda r: r.update(state="stopping"))
        for injector, ctx in reversed(contexts):
            errors += INJECTORS[injector]().revert(ctx)
            set_fault(ctx.fault, False)
        errors += runner_ledger.replay()
        finish(errors, reason="stopped" if stop.is_set() else ("error" if rc else "deadline"))
        with contextlib.suppress(FileNotFoundError):
            runner_record().unlink()
    return 1 if errors else rc


def set_fault(name: str, on: bool) -> None:
    update_run(lambda r: r.setdefault("faults", {}).__setitem__(name, on))


def finish(errors: list[str], reason: str) -> dict[str, Any]:
    """Mark the run finished and append it to the history (once)."""

    def _fin(r: dict[str, Any]) -> None:
        if r.get("state") == "finished":
            return
        r["state"] = "finished"
        r["finished_at"] = time.time()
        r["end_reason"] = reason
        if errors:
            r["errors"] = errors
        with open(lab_dir() / "history.jsonl", "a") as f:
            entry = {
                k: r.get(k)
                for k in (
                    "lab",
                    "started_at",
                    "finished_at",
                    "end_reason",
                    "hints_used",
                    "solved",
                    "score",
                    "errors",
                )
            }
            entry["attempts"] = len(r.get("attempts") or [])
            entry["wrong_attempts"] = sum(1 for a in r.get("attempts") or [] if not a.get("correct"))
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    return update_run(_fin)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m obslab.labs.runner")
    p.add_argument("lab")
    p.add_argument("--duration", type=float, required=True)
    a = p.parse_args(argv)
    labs = load_catalog()
    if a.lab not in labs:
        print(f"unknown lab {a.lab!r}", file=sys.stderr)
        return 2
    return run_lab(labs[a.lab], a.duration)


if __name__ == "__main__":
    sys.exit(main())
