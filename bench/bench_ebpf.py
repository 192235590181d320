"""eBPF exporter overhead: `stress-ng --pipe` throughput with and without the exporter attached.

The pipe stressor is close to a worst case for these probes: every write/read is a syscall
(raw_syscalls:sys_enter) and every blocked read a wake-up plus two context switches (sched_wakeup,
sched_switch). Configurations alternate run by run (baseline, all probes, all but one hot probe...) so slow
drift of a shared machine hits all of them alike; medians are compared. Also measured: exporter start-up
(spawn → /metrics served with the probes attached), its RSS, and the scrape time.

Run: ``make bench`` (all benches) or ``.venv/bin/python -m bench.bench_ebpf [--runs N] [--seconds S]``.
Needs root; prints why and returns otherwise.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from obslab.procs import OBSLAB, Proc, free_port, spawn, stop, wait_http

SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine, 321)
BPF_ENABLE_STATS = 32

#: name → extra exporter flags (None = no exporter: the baseline)
CONFIGS: dict[str, list[str] | None] = {
    "baseline (no exporter)": None,
    "all probes": [],
    "all but syscalls": ["--no-probe.syscalls"],
    "all but runqueue": ["--no-probe.runqueue"],
}


def parse_stress_ng_rate(text: str, stressor: str = "pipe") -> tuple[float, float]:
    """(bogo ops/s real time, bogo ops/s per CPU-second usr+sys) of ``stressor`` from ``--metrics-brief``.

    The second is the robust overhead measure on a shared machine: BPF programs run in the context of the
    task hitting the tracepoint, so their cost is charged to stress-ng's CPU time, while other tenants'
    load changes the real-time rate but not the CPU cost per operation.
    """
    for line in text.splitlines():
        m = re.search(
            rf"\]\s+{stressor}\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line
        )
        if m:
            return float(m.group(5)), float(m.group(6))
    raise ValueError(f"no {stressor} metrics line in stress-ng output:\n{text[-500:]}")


def run_pipe(seconds: int) -> tuple[float, float]:
    out = subprocess.run(
        ["taskset", "-c", "1", "stress-ng", "--pipe", "1", "--timeout", f"{seconds}s", "--metrics-brief"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    return parse_stress_ng_rate(out.stdout + out.stderr)


def enable_bpf_stats() -> int | None:
    """BPF_ENABLE_STATS (kernel >= 5.8): run-time accounting for all BPF programs while the fd is open.

    Unlike the kernel.bpf_stats_enabled sysctl it changes no machine setting: closing the fd (or exiting)
    turns accounting off again. None if the kernel refuses.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(128)  # union bpf_attr { struct { __u32 type; } enable_stats; }
    struct.pack_into("I", attr, 0, 0)  # BPF_STATS_RUN_TIME
    fd = int(libc.syscall(SYS_BPF, BPF_ENABLE_STATS, attr, 128))
    return fd if fd >= 0 else None


def bpf_run_stats(pid: int) -> tuple[int, int]:
    """(run_time_ns, run_cnt) summed over the BPF programs process ``pid`` holds (from /proc fdinfo)."""
    total_ns = total_cnt = 0
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(fd_dir / fd) != "anon_inode:bpf-prog":
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        total_ns += int(fields.get("run_time_ns", "0"))
        total_cnt += int(fields.get("run_cnt", "0"))
    return total_ns, total_cnt


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_exporter(
    flags: list[str], logdir: Path, env: dict[str, str] | None = None
) -> tuple[Proc, str, float]:
    port = free_port()
    argv = [
        *OBSLAB,
        "exporter",
        "ebpf",
        "--listen",
        f"127.0.0.1:{port}",
        *flags,
    ]
    t0 = time.perf_counter()
    proc = spawn("bench-ebpf", argv, logdir / f"exporter-{port}.log", env=env)
    url = f"http://127.0.0.1:{port}/metrics"
    if not wait_http(url, timeout=120, proc=proc):
        raise RuntimeError(f"exporter did not come up:\n{Path(proc.log).read_text()[-2000:]}")
    return proc, url, time.perf_counter() - t0


def scrape_seconds(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as r:
        r.read()
    return time.perf_counter() - t0


#: The accounting pass: which probe costs what (name → exporter flags, extra environment).
ACCOUNTING: dict[str, tuple[list[str], dict[str, str]]] = {
    "all probes": ([], {}),
    "syscalls only (raw tp)": (["--no-probe.blockio", "--no-probe.execs", "--no-probe.oom", "--no-probe.reclaim",
                                "--no-probe.runqueue", "--no-probe.skb_drops", "--no-probe.softirq",
                                "--no-probe.tcp_connect", "--no-probe.tcp_retransmit"], {}),
    "syscalls only (classic tp)": ([], {"OBSLAB_EBPF_NO_RAW": "1"}),
    "runqueue only": (["--no-probe.blockio", "--no-probe.execs", "--no-probe.oom", "--no-probe.reclaim",
                       "--no-probe.syscalls", "--no-probe.skb_drops", "--no-probe.softirq",
                       "--no-probe.tcp_connect", "--no-probe.tcp_retransmit"], {}),
}  # fmt: skip
ACCOUNTING["syscalls only (classic tp)"] = (
    ACCOUNTING["syscalls only (raw tp)"][0],
    {"OBSLAB_EBPF_NO_RAW": "1"},
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_ebpf", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("OBSLAB_BENCH_EBPF_RUNS", "7")))
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("OBSLAB_BENCH_EBPF_SECONDS", "3")))
    args = ap.parse_args(argv if argv is not None else [])  # `python -m bench` calls main() bare
    print("== eBPF exporter overhead (taskset -c 1 stress-ng --pipe 1) ==")
    if os.geteuid() != 0:
        print("skipped: needs root to load BPF programs")
        return 0
    if not shutil.which("stress-ng"):
        print("skipped: stress-ng is not installed (make setup)")
        return 0

    logdir = Path(tempfile.mkdtemp(prefix="obslab-bench-ebpf-"))
    rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
    cpu_rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
    startups: list[float] = []
    rss: list[float] = []
    scrapes: list[float] = []
    # 1. Throughput, alternating configurations, BPF run-time accounting OFF (it has a cost of its own).
    for i in range(args.runs):
        for name, flags in CONFIGS.items():
            proc = None
            try:
                if flags is not None:
                    proc, url, startup = start_exporter(flags, logdir)
                    if not flags:
                        startups.append(startup)
                real, cpu = run_pipe(args.seconds)
                rates[name].append(real)
                cpu_rates[name].append(cpu)
                if proc is not None and not flags:
                    scrapes.append(scrape_seconds(url))
                    rss.append(rss_mib(proc.pid))
            finally:
                if proc is not None:
                    stop(proc, timeout=15)
        print(f"  round {i + 1}/{args.runs}: " + ", ".join(f"{n}={r[-1]:,.0f}" for n, r in rates.items()))

    # 2. Where the cost goes: the kernel's own BPF run-time accounting, probe by probe.
    accounting: dict[str, tuple[float, float]] = {}
    stats_fd = enable_bpf_stats()
    if stats_fd is not None:
        try:
            for name, (flags, env) in ACCOUNTING.items():
                samples = []
                for _ in range(3):
                    proc, _url, _ = start_exporter(flags, logdir, env)
                    try:
                        before = bpf_run_stats(proc.pid)
                        real, _cpu = run_pipe(args.seconds)
                        after = bpf_run_stats(proc.pid)
                    finally:
                        stop(proc, timeout=15)
                    ops = real * args.seconds
                    samples.append(((after[0] - before[0]) / ops, (after[1] - before[1]) / ops))
                accounting[name] = (
                    statistics.median(s[0] for s in samples),
                    statistics.median(s[1] for s in samples),
                )
        finally:
            os.close(stats_fd)
    shutil.rmtree(logdir, ignore_errors=True)

    base = statistics.median(rates["baseline (no exporter)"])
    cpu_base = statistics.median(cpu_rates["baseline (no exporter)"])
    print(f"\nruns of {args.seconds}s, n={args.runs}, alternating; load average now {os.getloadavg()[0]:.2f}")
    # "paired": the median over rounds of (this run vs the baseline run just before it), robust to drift.
    print(
        f"{'configuration':<26}{'ops/s (real)':>14}{'slowdown':>10}{'paired':>8}"
        f"{'ops/CPU-s':>12}{'CPU cost':>10}{'paired':>8}"
    )
    base_runs, cpu_base_runs = rates["baseline (no exporter)"], cpu_rates["baseline (no exporter)"]
    for name in CONFIGS:
        med, cpu_med = statistics.median(rates[name]), statistics.median(cpu_rates[name])
        slow = (base - med) / base * 100
        cost = (cpu_base / cpu_med - 1) * 100
        paired_slow = statistics.median(
            (b - r) / b * 100 for b, r in zip(base_runs, rates[name], strict=True)
        )
        paired_cost = statistics.median(
            (b / c - 1) * 100 for b, c in zip(cpu_base_runs, cpu_rates[name], strict=True)
        )
        print(
            f"{name:<26}{med:>14,.0f}{slow:>9.1f}%{paired_slow:>7.1f}%"
            f"{cpu_med:>12,.0f}{cost:>9.1f}%{paired_cost:>7.1f}%"
        )
    if accounting:
        op_ns = 1e9 / cpu_base
        print(
            f"\nBPF run time per stress-ng op (kernel accounting; one op = {op_ns:,.0f} ns of CPU at baseline):"
        )
        for name, (ns, ev) in accounting.items():
            print(
                f"  {name:<28}{ns:>6.0f} ns/op = {ns / op_ns * 100:4.1f}% of an op  "
                f"({ev:.2f} program runs/op, {ns / ev if ev else 0:.0f} ns each)"
            )
    print(
        f"\nexporter start-up (spawn → probes attached, /metrics served): median {statistics.median(startups):.2f}s"
    )
    print(f"exporter RSS after start-up and a scrape: median {statistics.median(rss):.0f} MiB")
    print(f"scrape of /metrics (all probes): median {statistics.median(scrapes) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
