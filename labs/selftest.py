"""Lab selftest: prove each lab end to end against a real Prometheus.

For each lab: start it (short duration), wait until every evidence query holds, submit two wrong diagnoses
(must be refused) and the right one (must be accepted), stop, and look for residue (culprit processes, lab
cgroups, qdiscs, nft tables, limits left on the service's cgroup, lab files, ledgers). Uses the running
stack's Prometheus when `obslab up` runs one; otherwise starts a host exporter, the demo and a Prometheus
scraping both (1 s interval), and stops them afterwards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obslab.labs import api, demo, grader, runner, sandbox
from obslab.labs.catalog import Lab, load_catalog
from obslab.labs.ledger import ledger_dir

from obslab import config, procs
from obslab.paths import state_dir
from obslab.procs import OBSLAB
from obslab.prom import PromAPIError, PromClient, PrometheusServer, ScrapeJob, render_config

Log = Callable[[str], None]


@dataclass
class Result:
    id: str
    passed: bool = False
    seconds: float = 0.0
    checks: list[dict[str, Any]] = field(default_factory=list)
    residue: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append({"name": name, "ok": ok, "detail": detail})
        return ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "passed": self.passed,
            "seconds": round(self.seconds, 1),
            "checks": self.checks,
            "residue": self.residue,
        }


def _stack_prometheus() -> PromClient | None:
    """The Prometheus of a running `obslab up` (state_dir()/stack/prometheus*.json records it), if ready."""
    stack = state_dir() / "stack"
    for rec in sorted(stack.glob("prometheus*.json")) if stack.is_dir() else []:
        p = procs.Proc.load(rec)
        if p and p.alive():
            client = PromClient(f"http://127.0.0.1:{config.port('prometheus')}")
            if client.ready():
                return client
    return None


@contextlib.contextmanager
def environment(budget: float, log: Log) -> Iterator[tuple[PromClient, demo.DemoInfo, list[str]]]:
    """(Prometheus client, running demo, teardown residue list filled on exit)."""
    teardown: list[str] = []
    client = _stack_prometheus()
    info = demo.load_demo()
    if client is not None and info is not None:
        log(f"using the running stack's Prometheus ({client.base_url}) and demo")
        yield client, info, teardown
        return
    started: list[procs.Proc] = []
    prom: PrometheusServer | None = None
    try:
        if info is None:
            port = procs.free_port()
            proc = demo.spawn_demo(port, max_seconds=budget)
            started.append(proc)
            info = demo.wait_ready(timeout=90, proc=proc)
        host_port = procs.free_port()
        exporter = procs.spawn(
            "host-exporter",
            [
                *OBSLAB,
                "exporter",
                "host",
                "--listen",
                f"127.0.0.1:{host_port}",
            ],
            state_dir() / "selftest" / "host-exporter.log",
        )
        started.append(exporter)
        if not procs.wait_http(f"http://127.0.0.1:{host_port}/metrics", timeout=60, proc=exporter):
            raise RuntimeError(f"the host exporter did not start:\n{procs.tail(exporter.log)}")
        jobs = [
            ScrapeJob("host", [f"127.0.0.1:{host_port}"]),
            ScrapeJob("demo", [f"127.0.0.1:{info.port}"]),
        ]
        prom = PrometheusServer(render_config(jobs, scrape_interval="1s")).start()
        prom.client.wait_targets_up(timeout=60)
        log(f"started Prometheus {prom.url}, host exporter :{host_port}, demo :{info.port}")
        yield prom.client, info, teardown
    finally:
        if prom is not None:
            prom.stop()
        for p in reversed(started):
            procs.stop(p, timeout=30)
        if started and started[0].name == "demo":
            teardown.extend(instance_residue(sandbox.instance_id(state_dir())))


def _wrong_answers(lab: Lab, causes: list[str]) -> list[tuple[str, str, str]]:
    """Two diagnoses that must be refused: one far off, one a near miss (only the cause wrong)."""
    a = lab["answer"]
    other_cause = next(c for c in causes if c != a["cause"])
    other_res = next(r for r in grader.RESOURCES if r != a["resource"])
    other_sig = next(s for s in grader.SIGNALS if s not in lab.accepted_signals)
    right_sig = lab.accepted_signals[0]
    return [(other_res, other_sig, other_cause), (a["resource"], right_sig, other_cause)]


def lab_residue(lab: Lab, info: demo.DemoInfo) -> list[str]:
    """What of ``lab`` is still on the machine after stop (empty when the revert was complete)."""
    left: list[str] = []
    names = {str((f.get("params") or {}).get("process_name")) for f in lab["faults"]} - {"None"}
    for p in _processes():
        if p[1] in names:
            left.append(f"process {p[1]} (pid {p[0]})")
    keep = {info.app_cgroup, info.svc_cgroup, info.app_cgroup.rsplit("/", 1)[0] + "/loadgen"}
    base = sandbox.cgroup(info.app_cgroup.rsplit("/", 1)[0], mode=info.cgroup_mode)
    for d in base.dirs():
        for sub in (p for p in d.rglob("*") if p.is_dir()):
            rel = str(sub.relative_to(d.parents[len(base.rel.split("/")) - 1]))
            if rel not in keep:
                left.append(f"cgroup {sub}")
    app = sandbox.cgroup(info.app_cgroup, mode=info.cgroup_mode)
    for knob in (app.cpu_quota_knob(None)[0], app.memory_limit_knob(None)[0]):
        with contextlib.suppress(OSError):
            now = app.read(knob)
            if not _unlimited(now):
                left.append(f"{app.rel} {knob} = {now}")
    qd = sandbox.root_qdisc(info.veth_host)
    if qd not in ("", "noqueue"):
        left.append(f"qdisc {qd} on {info.veth_host}")
    for family, table in sandbox.nft_tables(info.netns):
        left.append(f"nft table {family} {table} in {info.netns}")
    if runner.files_dir().exists():
        left.append(f"files {runner.files_dir()}")
    left += [f"ledger {p.name}" for p in ledger_dir().glob("lab-*.jsonl")]
    left += [f"ledger {p.name}" for p in ledger_dir().glob("runner.jsonl")]
    for f in Path(info.log_dir).iterdir() if Path(info.log_dir).is_dir() else []:
        if f.name not in ("checkout.log", "lost+found"):
            left.append(f"file {f}")
    return left


def _unlimited(value: str) -> bool:
    """v1 writes -1 and reads back -1 (cpu) or a huge page-aligned number (memory); v2 reads "max"."""
    first = value.split()[0] if value.split() else ""
    return first in ("max", "-1") or (first.isdigit() and int(first) > 1 << 60)


def _processes() -> list[tuple[int, str]]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                stat = (d / "stat").read_text()
                if stat[stat.rindex(")") + 2] != "Z":  # a zombie is gone, only not yet reaped
                    out.append((int(d.name), stat[stat.index("(") + 1 : stat.rindex(")")]))
    return out


def instance_residue(iid: str) -> list[str]:
    """Kernel objects of instance ``iid`` still present (after its demo stopped)."""
    left = [f"netns {n}" for n in sandbox.netns_list() if n == f"{sandbox.PREFIX}-{iid}"]
    left += [f"link {n}" for n in sandbox.links() if n.startswith(f"{sandbox.PREFIX}-{iid}")]
    for top in sandbox.obslab_cgroup_tops():
        if (top / iid).exists():
            left.append(f"cgroup {top / iid}")
    left += [f"mount {m}" for m in sandbox.mounts_under(state_dir() / "demo")]
    left += [f"loop {d} ({b})" for d, b in sandbox.loop_devices() if b.startswith(str(state_dir()))]
    if (state_dir() / "demo.json").exists():
        left.append("file demo.json")
    return left


def run_one(lab: Lab, client: PromClient, info: demo.DemoInfo, duration: float, log: Log) -> Result:
    res = Result(lab.id)
    t0 = time.monotonic()
    causes = [c["id"] for c in api.catalog()[0]["answer_options"]["cause"]]
    try:
        api.start(lab.id, duration=duration)
        deadline = time.monotonic() + 120
        state = api.current()
        while state["state"] in ("starting", "idle") and time.monotonic() < deadline:
            time.sleep(0.3)
            state = api.current()
        if not res.check(
            "faults applied", state["state"] == "running", str(state.get("errors") or state["state"])
        ):
            return res
        res.check("lab state metric", _holds(client, f'obslab_lab_active{{lab="{lab.id}"}} == 1', 60) is None)
        for name, err in evidence(client, lab, timeout=min(150.0, duration - 20)):
            res.check(f"evidence: {name}", err is None, err or "")
            log(f"  {lab.id}: evidence {name!r}: {'ok' if err is None else 'FAILED'}")
        for wrong in _wrong_answers(lab, causes):
            r = api.answer(*wrong)
            res.check(
                f"wrong answer refused {wrong}", not r["correct"] and r["debrief"] is None, r["feedback"]
            )
        a = lab["answer"]
        r = api.answer(a["resource"], lab.accepted_signals[0], a["cause"])
        res.check("right answer accepted", bool(r["correct"]) and bool(r["debrief"]), str(r.get("score")))
    except Exception as e:
        res.check("run", False, f"{type(e).__name__}: {e}")
    finally:
        with contextlib.suppress(api.LabError):
            api.stop()
        end = api.current()
        res.check(
            "stopped cleanly",
            end["state"] == "finished" and not end.get("errors"),
            str(end.get("errors") or ""),
        )
        res.residue = lab_residue(lab, info)
        settle = time.monotonic() + 10  # processes killed a moment ago may still be exiting
        while res.residue and time.monotonic() < settle:
            time.sleep(0.5)
            res.residue = lab_residue(lab, info)
        res.seconds = time.monotonic() - t0
        res.passed = all(c["ok"] for c in res.checks) and not res.residue
    return res


def evidence(client: PromClient, lab: Lab, timeout: float) -> list[tuple[str, str | None]]:
    """Poll every evidence query together until each has held once (name, None) or the time is up."""
    pending = {ev["name"]: ev["query"] for ev in lab["evidence"]}
    done: list[tuple[str, str | None]] = []
    last: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name, query in list(pending.items()):
            try:
                result = client.query(query)
            except (PromAPIError, OSError) as e:
                last[name] = str(e)
                continue
            if result:
                done.append((name, None))
                del pending[name]
            else:
                last[name] = "empty result"
        time.sleep(1.0)
    for name, query in pending.items():
        done.append((name, f"{query!r} did not hold within {timeout:.0f}s ({last.get(name, '')})"))
    return done


def _holds(client: PromClient, expr: str, timeout: float) -> str | None:
    """None once ``expr`` returns a non-empty result, else why not."""
    try:
        client.wait_for(expr, timeout=timeout)
        return None
    except TimeoutError as e:
        return str(e)


def selftest(ids: list[str] | None = None, duration: float = 180, log: Log = lambda s: None) -> list[Result]:
    labs = load_catalog()
    chosen = [labs[i] for i in ids] if ids else list(labs.values())
    results: list[Result] = []
    teardown: list[str] = []
    try:
        with environment(budget=len(chosen) * (duration + 60) + 120, log=log) as (client, info, teardown):
            for lab in chosen:
                log(f"selftest {lab.id} ...")
                r = run_one(lab, client, info, duration, log)
                log(f"selftest {lab.id}: {'passed' if r.passed else 'FAILED'} in {r.seconds:.0f}s")
                results.append(r)
    except Exception as e:  # the environment itself failed: every lab not yet run fails with the reason
        for lab in chosen[len(results) :]:
            r = Result(lab.id)
            r.check("environment", False, f"{type(e).__name__}: {e}")
            results.append(r)
    if teardown and results:
        results[-1].residue += teardown
        results[-1].passed = False
    return results
