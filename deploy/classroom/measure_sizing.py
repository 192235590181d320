#!/usr/bin/env python3
"""Measure what one classroom lab VM costs the central VictoriaMetrics (the numbers in docs/classroom.md).

Runs N simulated lab nodes on loopback (a real `obslab exporter host`, and `obslab exporter ebpf` when BPF
works, each scraped by its own Prometheus agent rendered by agent_config.py) writing into a real
VictoriaMetrics for --seconds, then forces a merge and reads VictoriaMetrics' own metrics: active series per
node, samples/s, bytes per stored sample, and from them samples and disk per day at a 5 s scrape.

    .venv/bin/python deploy/classroom/measure_sizing.py --nodes 3 --seconds 240 --interval 1s
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from obslab import procs
from obslab.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "deploy"))
from deploytools import AgentServer, VictoriaMetrics, agent_config_module, start_host_exporter


def _ebpf(workdir: Path) -> tuple[procs.Proc, int] | None:
    port = procs.free_port()
    obslab = Path(sys.executable).parent / "obslab"
    proc = procs.spawn(
        "ebpf", [str(obslab), "exporter", "ebpf", "--listen", f"127.0.0.1:{port}"], workdir / "ebpf.log"
    )
    if procs.wait_http(f"http://127.0.0.1:{port}/metrics", timeout=90, proc=proc):
        return proc, port
    procs.stop(proc)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--interval", default="1s", help="scrape interval of the simulation (faster = more data)")
    ap.add_argument("--no-ebpf", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="obslab-sizing-"))
    vm = VictoriaMetrics().start()
    started: list[procs.Proc] = []
    agents: list[AgentServer] = []
    try:
        jobs: dict[str, str] = {}
        exporter, port = start_host_exporter(work)
        started.append(exporter)
        jobs["host"] = f"127.0.0.1:{port}"
        if not args.no_ebpf:
            ebpf = _ebpf(work)
            if ebpf:
                started.append(ebpf[0])
                jobs["ebpf"] = f"127.0.0.1:{ebpf[1]}"
        # Every simulated node scrapes the same exporters (one machine), each under its own learner label,
        # which is exactly N VMs' worth of series for the central store.
        render = agent_config_module().render_agent_config
        for i in range(args.nodes):
            text = render(
                learner=f"learner{i:02d}",
                node=f"lab-{i:02d}",
                central_url=vm.url,
                jobs=jobs,
                local_prometheus=None,
                scrape_interval=args.interval,
            )
            agent = AgentServer(text)
            agent.start()
            agents.append(agent)
        time.sleep(min(15.0, args.seconds / 4))

        def rows() -> float:
            return sum(v for k, v in vm.metrics().items() if k.startswith("vm_rows_inserted_total"))

        def cpu() -> float:
            return vm.metrics().get("process_cpu_seconds_total", 0.0)

        r0, c0, t0 = rows(), cpu(), time.monotonic()
        time.sleep(args.seconds)
        r1, c1, t1 = rows(), cpu(), time.monotonic()
        ingest = (r1 - r0) / (t1 - t0)
        vm_cpu = (c1 - c0) / (t1 - t0)
        vm.flush()
        with urllib.request.urlopen(f"{vm.url}/internal/force_merge", timeout=600):
            pass
        # force_merge returns at once and merges in the background: wait until the part count settles.
        last = -1.0
        for _ in range(60):
            time.sleep(2)
            parts = sum(v for k, v in vm.metrics().items() if k.startswith("vm_parts{") and "storage/" in k)
            if parts == last:
                break
            last = parts
        m = vm.metrics()
        stored_rows = sum(v for k, v in m.items() if k.startswith("vm_rows{") and "storage/" in k)
        stored_bytes = sum(v for k, v in m.items() if k.startswith("vm_data_size_bytes{") and "storage/" in k)
        # Series seen in the last hour include churn (process names come and go); the active ones are what
        # each scrape delivers: ingestion rate x interval / nodes.
        seen_per_node = vm.series_count('{learner="learner00"}')
        interval = float(args.interval.rstrip("s"))
        active_per_node = ingest * interval / args.nodes
        bps = stored_bytes / stored_rows if stored_rows else float("nan")
        samples_day_5s = active_per_node * 86400 / 5
        out = {
            "jobs": sorted(jobs),
            "nodes": args.nodes,
            "active_series_per_node": round(active_per_node),
            "series_seen_per_node_incl_churn": seen_per_node,
            "simulation_interval_s": interval,
            "samples_per_s_measured": round(ingest, 1),
            "vm_cpu_cores_used": round(vm_cpu, 4),
            "vm_cpu_core_seconds_per_million_samples": round(vm_cpu / ingest * 1e6, 2) if ingest else None,
            "vm_rss_mib": round(vm.metrics().get("process_resident_memory_bytes", 0) / 2**20, 1),
            "samples_per_s_per_node_at_5s": round(active_per_node / 5, 1),
            "stored_rows": stored_rows,
            "stored_bytes": stored_bytes,
            "bytes_per_sample": round(bps, 3),
            "samples_per_day_per_node_at_5s": int(samples_day_5s),
            "disk_mib_per_day_per_node_at_5s": round(samples_day_5s * bps / 2**20, 1),
            "storage_dir_bytes": vm.disk_bytes(),
        }
        print(json.dumps(out, indent=2))
    finally:
        for a in agents:
            a.stop()
        for p in started:
            procs.stop(p)
        vm.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
