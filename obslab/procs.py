"""Start, watch and stop the processes obslab owns.

A process is recorded as (pid, start time in clock ticks since boot) in a small JSON file. Stopping checks
that the PID still belongs to the process we started (the start time matches /proc/PID/stat), so a reused PID
is never signalled: obslab ends only what it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

#: How obslab runs itself as a child process (the exporters in the stack, selftests, benches, tests):
#: this interpreter, so a child sees the same venv whether or not `obslab` is on PATH.
OBSLAB: list[str] = [sys.executable, "-m", "obslab"]


def proc_starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time, clock ticks after boot), or None if PID is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(b")") + 2 :].split()
    if rest[0] == b"Z":  # a zombie is as good as gone
        return None
    return int(rest[19])


@dataclass
class Proc:
    name: str
    pid: int
    starttime: int
    argv: list[str]
    log: str

    def alive(self) -> bool:
        reap_exited()
        return proc_starttime(self.pid) == self.starttime

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Proc | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def spawn(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    record: Path | None = None,
) -> Proc:
    """Start ``argv`` in its own session (so Ctrl-C in our terminal does not reach it), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(log, "ab") as out:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=full_env,
            start_new_session=True,
        )
    start = None
    for _ in range(100):  # /proc entry appears at once; loop only guards a very early exit
        start = proc_starttime(child.pid)
        if start is not None or child.poll() is not None:
            break
        time.sleep(0.01)
    proc = Proc(name, child.pid, start or -1, list(argv), str(log))
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        proc.save(record)
    # Keep a handle so the child is reaped when it exits while we live (no zombies in `ps`).
    reap_exited()
    _children[child.pid] = child
    return proc


_children: dict[int, subprocess.Popen[bytes]] = {}


def reap_exited() -> None:
    """Collect children of ours that have exited, so a long-lived parent (the console) leaves no zombies."""
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            _children.pop(pid, None)


def _reap(pid: int) -> None:
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(Exception):
            child.wait(timeout=0)


def stop(proc: Proc, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """Stop a process we started: ``sig``, wait up to ``timeout``, then SIGKILL. True if it was running."""
    if not proc.alive():
        _reap(proc.pid)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child = _children.get(proc.pid)
        if child is not None and child.poll() is not None:
            break
        if not proc.alive():
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        for _ in range(100):
            if not proc.alive():
                break
            time.sleep(0.05)
    _reap(proc.pid)
    return True


def port_in_use(host: str, port: int) -> bool:
    """True if something already listens on host:port (we try to bind, as the server would)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now (for tests that run beside a live stack)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_http(url: str, timeout: float = 30.0, proc: Proc | None = None) -> bool:
    """Poll ``url`` until it answers 2xx; gives up early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_ok(url, timeout=1.0):
            return True
        if proc is not None and not proc.alive():
            return False
        time.sleep(0.1)
    return False


def tail(path: str | Path, lines: int = 20) -> str:
    """The last lines of a log, for error messages."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
