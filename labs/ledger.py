"""The ledger: every change obslab makes to the machine, written and fsync'd BEFORE it is made.

One JSON line per action (``{"action": "netns", "args": {...}}``) in ``state_dir()/ledger/<owner>.jsonl``.
``replay()`` undoes the lines newest first, so after a crash, a SIGKILL or a reboot `obslab lab reset` puts the
machine back. Every undo is idempotent (undoing what is already gone is a no-op), so replaying twice, or a
ledger line whose action never got applied, is harmless. ``sweep()`` then removes anything still named with
obslab's prefixes that no live obslab instance owns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from obslab.labs import sandbox

from obslab import procs
from obslab.paths import state_dir

log = logging.getLogger("obslab.labs.ledger")

UndoFn = Callable[..., None]
UNDO: dict[str, UndoFn] = {}


def undo(action: str) -> Callable[[UndoFn], UndoFn]:
    """Register how to undo ``action`` (the function gets the ledger line's args as keywords)."""

    def deco(fn: UndoFn) -> UndoFn:
        UNDO[action] = fn
        return fn

    return deco


def ledger_dir(state: Path | None = None) -> Path:
    d = (state or state_dir()) / "ledger"
    d.mkdir(parents=True, exist_ok=True)
    return d


class Ledger:
    """An append-only, fsync'd log of actions of one owner (``demo`` or ``lab``)."""

    def __init__(self, owner: str, state: Path | None = None):
        self.path = ledger_dir(state) / f"{owner}.jsonl"

    def record(self, action: str, **args: Any) -> None:
        if action not in UNDO:
            raise ValueError(f"ledger: no undo registered for {action!r}")
        line = json.dumps({"action": action, "args": args, "ts": time.time()}, sort_keys=True) + "\n"
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:  # the file's directory entry must survive a crash too
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def entries(self) -> list[dict[str, Any]]:
        return parse_ledger(self.path.read_text()) if self.path.exists() else []

    def replay(self) -> list[str]:
        """Undo every entry, newest first; the ledger is removed once all undos ran. Returns error strings."""
        errors = replay_entries(self.entries())
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        return errors


def parse_ledger(text: str) -> list[dict[str, Any]]:
    """The entries of a ledger file; a torn last line (a crash mid-write) is skipped."""
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "action" in entry:
            out.append(entry)
    return out


def replay_entries(entries: list[dict[str, Any]]) -> list[str]:
    errors = []
    for entry in reversed(entries):
        fn = UNDO.get(entry["action"])
        if fn is None:
            errors.append(f"unknown ledger action {entry['action']!r}")
            continue
        try:
            fn(**entry.get("args", {}))
        except Exception as e:  # one failed undo must not stop the others
            errors.append(f"undo {entry['action']} {entry.get('args')}: {e}")
    return errors


# ------------------------------------------------------------------------------------------ undos


@undo("netns")
def _undo_netns(name: str) -> None:
    sandbox.delete_netns(name)


@undo("link")
def _undo_link(name: str) -> None:
    sandbox.delete_link(name)


@undo("qdisc")
def _undo_qdisc(dev: str) -> None:
    sandbox.delete_qdisc(dev)


@undo("nft_table")
def _undo_nft(family: str, name: str, netns: str | None = None) -> None:
    sandbox.delete_nft_table(family, name, netns)


@undo("cgroup")
def _undo_cgroup(rel: str, mode: str, root: str = str(sandbox.CGROUP_ROOT)) -> None:
    sandbox.cgroup(rel, Path(root), mode).remove()


@undo("cgroup_write")
def _undo_cgroup_write(
    rel: str, mode: str, knob: str, old: str, root: str = str(sandbox.CGROUP_ROOT)
) -> None:
    cg = sandbox.cgroup(rel, Path(root), mode)
    if cg.exists():
        with contextlib.suppress(FileNotFoundError):
            cg.write(knob, old)


@undo("proc")
def _undo_proc(name: str, pid: int, starttime: int, argv: list[str] | None = None, log: str = "") -> None:
    p = procs.Proc(name, pid, starttime, argv or [], log)
    procs.stop(p, timeout=15)


@undo("mount")
def _undo_mount(target: str) -> None:
    sandbox.unmount(target)


@undo("loop")
def _undo_loop(backing: str) -> None:
    sandbox.detach_loops(Path(backing))


@undo("file")
def _undo_file(path: str) -> None:
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


# ------------------------------------------------------------------------------------------ sweep

REGISTRY = Path("/run/obslab/instances")


def register_instance(iid: str, state: Path) -> None:
    """Note which state directory owns kernel objects named ``obslab-<iid>`` (read by other resets)."""
    REGISTRY.mkdir(parents=True, exist_ok=True)
    (REGISTRY / iid).write_text(str(state))


def unregister_instance(iid: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (REGISTRY / iid).unlink()


def instance_live(iid: str) -> bool:
    """True if a live demo or lab runner owns instance ``iid`` (so a reset elsewhere leaves it alone)."""
    try:
        state = Path((REGISTRY / iid).read_text().strip())
    except OSError:
        return False
    for rec in (state / "demo.json", state / "lab" / "runner.json"):
        try:
            pid, start = (lambda d: (int(d["pid"]), int(d["starttime"])))(json.loads(rec.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if procs.proc_starttime(pid) == start:
            return True
    return False


def _iid_of(name: str) -> str:
    """``obslab-1a2bh`` → ``1a2b``; ``obslab/1a2b/app`` → ``1a2b``."""
    rest = name[len(sandbox.PREFIX) + 1 :]
    return rest[:4]


def sweep(keep: set[str] | None = None, state: Path | None = None) -> list[str]:
    """Remove obslab-named objects whose instance is not live (or is in ``keep``-less own state). Returns what went."""
    keep = keep if keep is not None else set()
    state = state or state_dir()
    removed: list[str] = []

    def dead(name: str) -> bool:
        iid = _iid_of(name)
        return iid not in keep and not instance_live(iid)

    for ns in sandbox.netns_list():
        if ns.startswith(sandbox.PREFIX + "-") and dead(ns):
            sandbox.delete_netns(ns)
            removed.append(f"netns {ns}")
    for link in sandbox.links():
        if link.startswith(sandbox.PREFIX + "-") and dead(link):
            sandbox.delete_link(link)
            removed.append(f"link {link}")
    for family, table in sandbox.nft_tables():
        if table.startswith(sandbox.PREFIX + "_"):
            sandbox.delete_nft_table(family, table)
            removed.append(f"nft table {family} {table}")
    for top in sandbox.obslab_cgroup_tops():
        with contextlib.suppress(OSError):
            for inst in top.iterdir():
                if inst.is_dir() and dead(f"obslab/{inst.name}"):
                    deadline = time.monotonic() + 10
                    for sub in sorted(
                        (p for p in inst.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
                    ):
                        with contextlib.suppress(sandbox.SandboxError):
                            sandbox._kill_and_rmdir(sub, deadline)
                    with contextlib.suppress(sandbox.SandboxError):
                        sandbox._kill_and_rmdir(inst, deadline)
                    removed.append(f"cgroup {inst}")
        with contextlib.suppress(OSError):
            if not any(p.is_dir() for p in top.iterdir()):
                top.rmdir()
    # lab files and mounts of this state directory (never of another one)
    for target in sorted(sandbox.mounts_under(state / "demo"), reverse=True):
        if not instance_live(sandbox.instance_id(state)):
            sandbox.unmount(target)
            removed.append(f"mount {target}")
    if not instance_live(sandbox.instance_id(state)):
        for dev, back in list(sandbox.loop_devices()):
            if back.startswith(str(state)):
                sandbox.detach_loops(Path(back))
                removed.append(f"loop {dev}")
    with contextlib.suppress(OSError):
        for entry in REGISTRY.iterdir():
            if not instance_live(entry.name):
                unregister_instance(entry.name)
    lab_files = state / "lab" / "files"
    if lab_files.exists():
        shutil.rmtree(lab_files, ignore_errors=True)
        removed.append(f"files {lab_files}")
    return removed
