"""Sandbox: cgroup v2 on a fixture tree (this machine's unified mount has no controllers), v1 for real,
cgroup mode detection, and names that stay within obslab's prefixes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from obslab.labs import sandbox

from tests.conftest import requires_root


def _v2_root(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("cpu memory\n")
    (root / "cgroup.procs").write_text("")
    return root


def _populate(d: Path) -> None:
    """What the kernel would create in a new v2 cgroup (a fixture directory has to be told)."""
    (d / "cgroup.controllers").write_text("cpu memory\n")
    (d / "cgroup.subtree_control").write_text("")
    (d / "cgroup.procs").write_text("")
    (d / "cpu.max").write_text("max 100000\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.current").write_text("52428800\n")


def test_v2_fixture_tree(tmp_path: Path) -> None:
    root = _v2_root(tmp_path)
    assert sandbox.cgroup_mode(root) == "v2"
    assert sandbox.cgroup_controllers(root) == ["cpuset", "cpu", "io", "memory", "pids"]
    # the parents exist first (created by the demo), as the kernel fills them
    for rel in ("obslab", "obslab/1a2b"):
        (root / rel).mkdir()
        _populate(root / rel)
    cg = sandbox.cgroup("obslab/1a2b/app", root)
    assert isinstance(cg, sandbox.CgroupV2) and cg.mode == "v2"
    cg.create()
    _populate(root / "obslab/1a2b/app")
    assert cg.dirs() == [root / "obslab/1a2b/app"]
    # ancestors enable the controllers children need; the root's subtree_control (not ours) is untouched
    assert (root / "obslab" / "cgroup.subtree_control").read_text().split() == ["+cpu", "+memory"]
    assert (root / "obslab/1a2b" / "cgroup.subtree_control").read_text().split() == ["+cpu", "+memory"]
    assert (root / "cgroup.subtree_control").read_text() == "cpu memory\n"
    knob, value = cg.cpu_quota_knob(5000, 100000)
    assert (knob, value) == ("cpu.max", "5000 100000")
    cg.write(knob, value)
    assert cg.read("cpu.max") == "5000 100000"
    assert cg.cpu_quota_knob(None) == ("cpu.max", "max 100000")
    assert cg.memory_limit_knob(64 << 20) == ("memory.max", str(64 << 20))
    assert cg.memory_limit_knob(None) == ("memory.max", "max")
    assert cg.memory_usage() == 52428800
    assert cg.cpu_weight_knob(4) == ("cpu.weight", "400")
    cg.add(os.getpid())
    assert cg.pids() == {os.getpid()}


def test_v1_fixture_layout_and_co_mounted_hierarchies(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    for c in ("cpu,cpuacct", "memory", "blkio", "pids"):
        (root / c).mkdir(parents=True)
        (root / c / "cgroup.procs").write_text("")
    (root / "cpu").symlink_to("cpu,cpuacct")
    (root / "cpuacct").symlink_to("cpu,cpuacct")
    assert sandbox.cgroup_mode(root) == "v1"
    cg = sandbox.cgroup("obslab/1a2b/app", root)
    names = [d.relative_to(root).parts[0] for d in cg.dirs()]
    assert names == ["cpu", "memory", "blkio", "pids"]  # cpu and cpuacct are one hierarchy: once
    assert cg.cpu_quota_knob(5000) == ("cpu.cfs_quota_us", "5000")
    assert cg.memory_limit_knob(None) == ("memory.limit_in_bytes", "-1")
    assert cg.cpu_weight_knob(4) == ("cpu.shares", "4096")


def test_only_obslab_cgroups() -> None:
    with pytest.raises(sandbox.SandboxError):
        sandbox.cgroup("process_api/foo", mode="v1")
    with pytest.raises(sandbox.SandboxError):
        sandbox.cgroup("obslabx/foo", mode="v2")


def test_net_plan_names_fit_and_are_prefixed() -> None:
    for iid in ("0000", "a2db", "ffff"):
        plan = sandbox.NetPlan(iid)
        for name in (plan.netns, plan.veth_host, plan.veth_ns):
            assert name.startswith("obslab-") and len(name) <= 15
        assert plan.host_addr.startswith("10.231.") and plan.ns_addr.startswith("10.231.")
        h, n = plan.host_addr.rsplit(".", 1), plan.ns_addr.rsplit(".", 1)
        assert h[0] == n[0] and int(n[1]) == int(h[1]) + 1 and int(h[1]) % 4 == 1


@requires_root
def test_v1_for_real() -> None:
    if sandbox.cgroup_mode() not in ("v1", "hybrid"):
        pytest.skip("this machine has no v1 controllers")
    cg = sandbox.cgroup("obslab/fffe/sandbox-test")
    try:
        cg.create()
        assert cg.exists()
        knob, value = cg.cpu_quota_knob(20000)
        cg.write(knob, value)
        assert cg.read("cpu.cfs_quota_us") == "20000"
        knob, value = cg.memory_limit_knob(64 << 20)
        cg.write(knob, value)
        assert int(cg.read("memory.limit_in_bytes")) == 64 << 20
    finally:
        cg.remove()
    assert not cg.exists()
    # the empty parents we made went too
    assert not any(Path(sandbox.CGROUP_ROOT, c, "obslab", "fffe").exists() for c in sandbox.V1_CONTROLLERS)
