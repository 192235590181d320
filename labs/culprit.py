"""Culprit workloads: the "runaway batch job" a learner hunts for in ps, top and pidstat.

This file is stdlib-only on purpose: injectors feed its source to ``python3 -I -`` started with a plausible
argv[0] (``thumbnailer``, ``reportgen``...), so ps shows ``thumbnailer -I - --until ...`` and not a path into
obslab, and ``PR_SET_NAME`` sets the comm that top and pidstat print. Every workload is bounded: it exits at
``--until`` (epoch seconds) or when its parent (the lab runner) is gone, and its size is capped by arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import os
import signal
import sys
import threading
import time

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1


def set_comm(name: str) -> None:
    """Set /proc/self/comm (what top/pidstat show); argv[0] is already set by the exec."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


_parent = os.getppid()


def mark_parent() -> None:
    """Remember who started this process (call again in each forked child)."""
    global _parent
    _parent = os.getppid()


def expired(until: float) -> bool:
    """Past the deadline, or orphaned (the runner that started us died: a reset will follow)."""
    return time.time() >= until or os.getppid() != _parent


def spin(args: argparse.Namespace) -> None:
    """cpu-hog: ``workers`` processes burning CPU (hashing "thumbnails") until ``until``."""
    children = []
    for _ in range(max(0, args.workers - 1)):
        pid = os.fork()
        if pid == 0:
            mark_parent()
            _spin_loop(args.until)
            os._exit(0)
        children.append(pid)
    _spin_loop(args.until)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _spin_loop(until: float) -> None:
    data = b"x" * 4096
    while not expired(until):
        for _ in range(2000):
            data = hashlib.sha256(data).digest() * 128


def leak(args: argparse.Namespace) -> None:
    """memory-leak-oom: a supervisor restarting a worker that leaks ``step_mib`` every 100 ms, capped."""
    while not expired(args.until):
        pid = os.fork()
        if pid == 0:
            mark_parent()
            # The worker is the one the OOM killer should pick, never the service sharing the cgroup.
            try:
                with open("/proc/self/oom_score_adj", "w") as f:
                    f.write("1000")
            except OSError:
                pass
            hoard: list[bytearray] = []
            while not expired(args.until) and len(hoard) * args.step_mib < args.cap_mib:
                block = bytearray(args.step_mib << 20)
                for i in range(0, len(block), 4096):  # touch every page: RSS, not just virtual size
                    block[i] = 1
                hoard.append(block)
                time.sleep(0.1)
            while not expired(args.until):  # reached the cap without an OOM: hold, then exit
                time.sleep(0.5)
            os._exit(0)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        time.sleep(args.restart_delay)


def thrash(args: argparse.Namespace) -> None:
    """memory-pressure: hold ``anon_mib`` and re-read a ``file_mib`` data file so the cgroup keeps reclaiming."""
    hoard = bytearray(args.anon_mib << 20)
    for i in range(0, len(hoard), 4096):
        hoard[i] = 1
    path = args.path
    chunk = b"\xa5" * (1 << 20)
    with open(path, "wb") as f:
        for _ in range(args.file_mib):
            f.write(chunk)
    while not expired(args.until):
        with open(path, "rb", buffering=0) as f:
            while f.readinto(bytearray(1 << 20)) and not expired(args.until):
                pass
        for i in range(0, len(hoard), 4096 * 16):  # keep the anonymous set hot too
            hoard[i] = (hoard[i] + 1) & 0xFF


def fsync_storm(args: argparse.Namespace) -> None:
    """disk-latency: ``threads`` writers rewriting a capped file with fsync after every chunk."""

    def writer(n: int) -> None:
        chunk = os.urandom(args.chunk_kib << 10)
        path = f"{args.path}.{n}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        off = 0
        try:
            while not expired(args.until):
                os.pwrite(fd, chunk, off)
                os.fsync(fd)
                off = (off + len(chunk)) % (args.file_mib << 20)
        finally:
            os.close(fd)

    ts = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(args.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def fill(args: argparse.Namespace) -> None:
    """disk-full: keep writing a spool file (up to ``cap_mib``) so the volume stays at ENOSPC; hold it open.

    After the first ENOSPC it keeps topping the volume up in small writes: ext4 gives back part of its
    delayed-allocation reservation once data is allocated, and a real runaway writer takes that too.
    """
    fd = os.open(args.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written = 0
    chunk = b"\0" * (1 << 20)
    while not expired(args.until):
        if written >= args.cap_mib << 20:
            time.sleep(0.5)  # at the cap: keep the file open, the lesson of `lsof +L1`
            continue
        try:
            written += os.write(fd, chunk)
        except OSError:  # ENOSPC: the volume is full, which is the point; retry small writes
            chunk = b"\0" * 4096
            with contextlib.suppress(OSError):
                os.fsync(fd)
            time.sleep(0.1)
    os.close(fd)


KINDS = {"spin": spin, "leak": leak, "thrash": thrash, "fsync": fsync_storm, "fill": fill}


def main(argv: list[str]) -> None:
    """Arguments come in ``CULPRIT_ARGS`` (JSON list) so ps shows only the cosmetic argv the injector chose."""
    import json

    argv = json.loads(os.environ.pop("CULPRIT_ARGS", "[]")) or argv
    p = argparse.ArgumentParser()
    p.add_argument("--kind", required=True, choices=sorted(KINDS))
    p.add_argument("--name", required=True)
    p.add_argument("--until", type=float, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--step-mib", type=int, default=8)
    p.add_argument("--cap-mib", type=int, default=256)
    p.add_argument("--restart-delay", type=float, default=1.0)
    p.add_argument("--anon-mib", type=int, default=64)
    p.add_argument("--file-mib", type=int, default=64)
    p.add_argument("--chunk-kib", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--path", default="")
    args = p.parse_args(argv)
    mark_parent()
    set_comm(args.name)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    KINDS[args.kind](args)


if __name__ == "__main__":
    main(sys.argv[1:])
