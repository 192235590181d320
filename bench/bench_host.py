"""Host exporter CPU cost, side by side with node_exporter, in one run.

1. CPU per scrape: our exporter and node_exporter 1.5 restricted to the same collectors (cpu, loadavg,
   meminfo, pressure, vmstat, diskstats, filesystem, netdev, netstat, stat, processes, cgroups), scraped
   alternately in rounds; CPU is the exporter process's utime+stime delta (/proc/PID/stat, all threads)
   over each batch of scrapes. Targets: ratio <= 1.25, aim <= 1.0.
2. Marginal CPU of one more process per scrape: our exporter with its default collectors (which include
   the per-process ``process`` collector) scraped with N extra idle processes and without, alternately.
   Target: <= 30 µs per process per scrape.

Run: ``make bench`` or ``.venv/bin/python -m bench host``. Knobs: OBSLAB_BENCH_SCRAPES (per batch, 100),
OBSLAB_BENCH_ROUNDS (4), OBSLAB_BENCH_SLEEPERS (500).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from obslab import procs
from obslab.paths import find_binary
from obslab.procs import OBSLAB

SAME = [
    "cpu",
    "loadavg",
    "meminfo",
    "pressure",
    "vmstat",
    "diskstats",
    "filesystem",
    "netdev",
    "netstat",
    "stat",
    "processes",
    "cgroups",
]
SCRAPES = int(os.environ.get("OBSLAB_BENCH_SCRAPES", "100"))
ROUNDS = int(os.environ.get("OBSLAB_BENCH_ROUNDS", "4"))
SLEEPERS = int(os.environ.get("OBSLAB_BENCH_SLEEPERS", "500"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads, live and exited), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def scrape_batch(port: int, pid: int, n: int) -> float:
    """CPU seconds per scrape over ``n`` scrapes (one new connection each, as a plain HTTP client)."""
    url = f"http://127.0.0.1:{port}/metrics"
    start = cpu_seconds(pid)
    for _ in range(n):
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
    return (cpu_seconds(pid) - start) / n


def start_ours(workdir: Path, collectors: list[str] | None) -> tuple[procs.Proc, int]:
    port = procs.free_port()
    argv = [
        *OBSLAB,
        "exporter",
        "host",
        "--listen",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    if collectors is not None:
        argv += ["--collector.disable-defaults", *(f"--collector.{c}" for c in collectors)]
    proc = procs.spawn("bench-obslab", argv, workdir / f"obslab-{port}.log")
    if not procs.wait_http(f"http://127.0.0.1:{port}/metrics", timeout=30, proc=proc):
        raise SystemExit(f"our exporter did not start:\n{procs.tail(proc.log)}")
    return proc, port


def start_node(workdir: Path) -> tuple[procs.Proc, int]:
    binary = find_binary("prometheus-node-exporter") or find_binary("node_exporter")
    if not binary:
        raise SystemExit("node_exporter is not installed: apt-get install prometheus-node-exporter")
    port = procs.free_port()
    argv = [
        binary,
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        *(f"--collector.{c}" for c in SAME),
        "--log.level=warn",
    ]
    proc = procs.spawn("bench-node", argv, workdir / "node.log")
    if not procs.wait_http(f"http://127.0.0.1:{port}/metrics", timeout=30, proc=proc):
        raise SystemExit(f"node_exporter did not start:\n{procs.tail(proc.log)}")
    return proc, port


def bench_ratio(workdir: Path) -> float:
    ours, ours_port = start_ours(workdir, SAME)
    node, node_port = start_node(workdir)
    try:
        for port, p in ((ours_port, ours), (node_port, node)):  # warm up: caches, first-scrape setup
            scrape_batch(port, p.pid, 20)
        o_runs: list[float] = []
        n_runs: list[float] = []
        for r in range(ROUNDS):
            order = [("ours", ours_port, ours), ("node", node_port, node)]
            if r % 2:
                order.reverse()
            for who, port, p in order:
                (o_runs if who == "ours" else n_runs).append(scrape_batch(port, p.pid, SCRAPES))
        o, n = sum(o_runs) / len(o_runs), sum(n_runs) / len(n_runs)
        print(
            f"CPU per scrape, same {len(SAME)} collectors ({ROUNDS} alternating rounds x {SCRAPES} scrapes):"
        )
        print(
            f"  obslab host exporter : {o * 1e3:7.2f} ms   rounds: {', '.join(f'{x * 1e3:.2f}' for x in o_runs)}"
        )
        print(
            f"  node_exporter 1.5    : {n * 1e3:7.2f} ms   rounds: {', '.join(f'{x * 1e3:.2f}' for x in n_runs)}"
        )
        ratio = o / n
        verdict = "ok" if ratio <= 1.25 else "OVER TARGET"
        print(f"  ratio obslab/node    : {ratio:7.2f}   (target <= 1.25, aim <= 1.0: {verdict})")
        return ratio
    finally:
        procs.stop(ours)
        procs.stop(node)


def _sleepers(n: int) -> list[subprocess.Popen[bytes]]:
    sleep = shutil.which("sleep") or "/bin/sleep"
    return [subprocess.Popen([sleep, "600"], stdin=subprocess.DEVNULL) for _ in range(n)]  # bounded: 10 min


def _stop_sleepers(children: list[subprocess.Popen[bytes]]) -> None:
    for c in children:  # only the processes this bench started, by their Popen handle
        c.terminate()
    for c in children:
        c.wait(timeout=30)


def bench_marginal(workdir: Path) -> float:
    ours, port = start_ours(workdir, None)
    node, node_port = start_node(workdir)
    try:
        scrape_batch(port, ours.pid, 20)
        scrape_batch(node_port, node.pid, 20)
        base, loaded, node_base, node_loaded = [], [], [], []
        for _ in range(max(ROUNDS // 2, 2)):
            base.append(scrape_batch(port, ours.pid, SCRAPES))
            node_base.append(scrape_batch(node_port, node.pid, SCRAPES))
            children = _sleepers(SLEEPERS)
            try:
                time.sleep(0.5)
                scrape_batch(port, ours.pid, 5)  # the first scrape after the spawn sees new processes
                loaded.append(scrape_batch(port, ours.pid, SCRAPES))
                node_loaded.append(scrape_batch(node_port, node.pid, SCRAPES))
            finally:
                _stop_sleepers(children)
            time.sleep(0.5)
        b, lo = sum(base) / len(base), sum(loaded) / len(loaded)
        per_proc = (lo - b) / SLEEPERS
        nb, nl = sum(node_base) / len(node_base), sum(node_loaded) / len(node_loaded)
        print(
            f"Marginal CPU per extra process per scrape ({SLEEPERS} idle sleepers, all default collectors):"
        )
        print(
            f"  obslab, {len(os.listdir('/proc'))} /proc entries now: {b * 1e3:.2f} ms -> {lo * 1e3:.2f} ms per scrape"
            f" = {per_proc * 1e6:.1f} µs per process (target <= 30 µs: {'ok' if per_proc <= 30e-6 else 'OVER TARGET'})"
        )
        print(
            f"  node_exporter (same 12 collectors, for scale): {nb * 1e3:.2f} ms -> {nl * 1e3:.2f} ms"
            f" = {(nl - nb) / SLEEPERS * 1e6:.1f} µs per process"
        )
        return per_proc
    finally:
        procs.stop(ours)
        procs.stop(node)


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="obslab-bench-host-"))
    try:
        print(f"host: {os.cpu_count()} CPUs, kernel {os.uname().release}, python {sys.version.split()[0]}")
        bench_ratio(workdir)
        bench_marginal(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
