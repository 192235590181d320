"""Injectors applied and reverted for real on a lab veth/netns (revert twice: idempotent), and the demo
service's pure pieces: outcome classification, the relayed client metrics and the lab-state metrics."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from obslab.labs import demo, ledger, sandbox
from obslab.labs.injectors import INJECTORS, FaultContext, load_all
from prometheus_client import CollectorRegistry, generate_latest

from tests.conftest import requires_root


def test_parse_outcome() -> None:
    assert demo.parse_outcome(200, None) == "ok"
    assert demo.parse_outcome(507, None) == "error"
    assert demo.parse_outcome(None, ConnectionRefusedError()) == "error"
    assert demo.parse_outcome(None, TimeoutError()) == "timeout"


def test_lab_state_and_relay_collectors(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()
    (tmp_path / "demo").mkdir()
    reg = CollectorRegistry()
    reg.register(demo._LabStateCollector(tmp_path))
    reg.register(demo._RelayCollector(tmp_path / "demo" / "loadgen.prom"))
    text = generate_latest(reg).decode()
    assert 'obslab_lab_active{lab="cpu-hog"} 0.0' in text and "obslab_lab_fault_active{" not in text
    run = {"state": "running", "lab": "disk-full", "faults": {"dump": True}}
    (tmp_path / "lab" / "run.json").write_text(json.dumps(run))
    relay = tmp_path / "demo" / "loadgen.prom"
    relay.write_text(
        '# TYPE obslab_demo_client_requests_total counter\nobslab_demo_client_requests_total{outcome="ok"} 7.0\n'
    )
    text = generate_latest(reg).decode()
    assert 'obslab_lab_active{lab="disk-full"} 1.0' in text
    assert 'obslab_lab_active{lab="cpu-hog"} 0.0' in text
    assert 'obslab_lab_fault_active{fault="dump",lab="disk-full"} 1.0' in text
    assert 'obslab_demo_client_requests_total{outcome="ok"} 7.0' in text
    old = time.time() - 60  # a stale relay file (dead client) exports nothing
    os.utime(relay, (old, old))
    assert "obslab_demo_client_requests_total" not in generate_latest(reg).decode()


@pytest.fixture
def lab_net(tmp_path: Path):  # type: ignore[no-untyped-def]
    lg = ledger.Ledger("net", tmp_path)
    plan = sandbox.NetPlan("fffc")
    lg.record("netns", name=plan.netns)
    sandbox.create_netns(plan)
    lg.record("link", name=plan.veth_host)
    sandbox.create_veth(plan)
    info = demo.DemoInfo(
        name="demo", pid=os.getpid(), starttime=0, argv=[], log="", port=0, iid="fffc",
        cgroup_mode=sandbox.cgroup_mode(), app_cgroup="obslab/fffc/app", svc_cgroup="obslab/fffc/app/svc",
        netns=plan.netns, veth_host=plan.veth_host, veth_ns=plan.veth_ns, host_addr=plan.host_addr,
        ns_addr=plan.ns_addr, app_port=8080, log_dir=str(tmp_path),
    )  # fmt: skip
    yield info, tmp_path
    assert lg.replay() == []


@requires_root
def test_network_injectors_apply_and_revert_twice(lab_net) -> None:  # type: ignore[no-untyped-def]
    info, tmp = lab_net
    load_all()
    for name, check in (
        ("bandwidth_cap", lambda: sandbox.root_qdisc(info.veth_host) == "tbf"),
        ("packet_loss", lambda: ("inet", "obslab_f") in sandbox.nft_tables(info.netns)),
    ):
        inj = INJECTORS[name]
        ctx = FaultContext("t", "f", ledger.Ledger(f"lab-{name}", tmp), info, time.time() + 30, tmp / "files")
        inj().apply(ctx, inj.validate({}))
        assert check(), name
        assert inj().revert(ctx) == []
        assert not check(), name
        assert inj().revert(ctx) == []  # idempotent
    assert sandbox.root_qdisc(info.veth_host) == "noqueue"
