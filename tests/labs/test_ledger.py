"""The ledger: lines fsync'd before the action, replayed newest first, idempotent, torn lines tolerated;
and for real (root): a netns, a veth, a cgroup and a qdisc created under the ledger are all undone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from obslab.labs import ledger, sandbox

from tests.conftest import requires_root

calls: list[tuple[str, int]] = []


@ledger.undo("test_mark")
def _undo_mark(tag: str, n: int) -> None:
    calls.append((tag, n))


def test_record_then_replay_backwards_and_idempotent(tmp_path: Path) -> None:
    calls.clear()
    lg = ledger.Ledger("unit", tmp_path)
    for n in range(3):
        lg.record("test_mark", tag="a", n=n)
    lines = lg.path.read_text().splitlines()
    assert [json.loads(x)["args"]["n"] for x in lines] == [0, 1, 2]
    assert lg.replay() == []
    assert calls == [("a", 2), ("a", 1), ("a", 0)]
    assert not lg.path.exists()
    assert lg.replay() == [] and calls == [("a", 2), ("a", 1), ("a", 0)]  # twice: nothing more happens


def test_unknown_action_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    lg = ledger.Ledger("unit", tmp_path)
    with pytest.raises(ValueError):
        lg.record("launch_missiles", target="moon")
    assert not lg.path.exists()


def test_torn_last_line_and_failing_undo(tmp_path: Path) -> None:
    calls.clear()
    lg = ledger.Ledger("unit", tmp_path)
    lg.record("test_mark", tag="b", n=1)
    lg.record(
        "cgroup_write", rel="obslab/0000/none", mode="v2", knob="cpu.max", old="max", root=str(tmp_path)
    )
    with open(lg.path, "a") as f:
        f.write('{"action": "test_mark", "args": {"tag": "b", "n"')  # a crash mid-write
    assert len(ledger.parse_ledger(lg.path.read_text())) == 2
    errors = lg.replay()
    assert errors == []  # the cgroup is gone already: restoring its knob is a no-op, not an error
    assert calls == [("b", 1)]


def test_a_failing_undo_does_not_stop_the_others(tmp_path: Path) -> None:
    calls.clear()
    lg = ledger.Ledger("unit", tmp_path)
    lg.record("test_mark", tag="c", n=1)
    lg.record("test_mark", tag="c", n="not-an-int-but-fine")
    entries = lg.entries()
    entries.insert(1, {"action": "test_mark", "args": {"bogus": 1}})
    errors = ledger.replay_entries(entries)
    assert len(errors) == 1 and "bogus" in errors[0]
    assert calls == [("c", "not-an-int-but-fine"), ("c", 1)]


@requires_root
def test_real_objects_undone(tmp_path: Path) -> None:
    lg = ledger.Ledger("unit", tmp_path)
    plan = sandbox.NetPlan("fffd")
    mode = sandbox.cgroup_mode()
    try:
        lg.record("netns", name=plan.netns)
        sandbox.create_netns(plan)
        lg.record("link", name=plan.veth_host)
        sandbox.create_veth(plan)
        lg.record("qdisc", dev=plan.veth_host)
        sandbox.run(
            [
                "tc",
                "qdisc",
                "replace",
                "dev",
                plan.veth_host,
                "root",
                "tbf",
                "rate",
                "1mbit",
                "burst",
                "32kbit",
                "latency",
                "100ms",
            ]
        )
        lg.record("nft_table", family="inet", name="obslab_unit", netns=plan.netns)
        sandbox.run(["nft", "add", "table", "inet", "obslab_unit"], netns=plan.netns)
        lg.record("cgroup", rel="obslab/fffd/unit", mode=mode)
        sandbox.cgroup("obslab/fffd/unit", mode=mode).create()
        assert plan.netns in sandbox.netns_list() and plan.veth_host in sandbox.links()
        assert sandbox.root_qdisc(plan.veth_host) == "tbf"
        assert ("inet", "obslab_unit") in sandbox.nft_tables(plan.netns)
    finally:
        errors = lg.replay()
    assert errors == []
    assert plan.netns not in sandbox.netns_list()
    assert plan.veth_host not in sandbox.links()
    assert not sandbox.cgroup("obslab/fffd/unit", mode=mode).exists()
    assert ledger.Ledger("unit", tmp_path).replay() == []  # idempotent on the real machine too
