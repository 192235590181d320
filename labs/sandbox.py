"""The lab sandbox: cgroups (v1 and v2 behind one interface), network namespaces and veth pairs.

Everything here is named with obslab's prefixes (cgroups under ``obslab/``, netns and links ``obslab-``,
nft tables ``obslab_``) so `obslab lab reset` can find it, and nothing else is ever touched. Callers write
each action to the ledger (labs/ledger.py) before calling these functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The v1 hierarchies a lab cgroup is created in (cpu and cpuacct may be co-mounted as cpu,cpuacct).
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "blkio", "pids")
PREFIX = "obslab"


class SandboxError(RuntimeError):
    pass


def run(argv: Sequence[str], *, check: bool = True, netns: str | None = None, timeout: float = 20) -> str:
    """Run an iproute2/nft/mount command; stdout, or SandboxError with its stderr."""
    full = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    res = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise SandboxError(f"{' '.join(full)}: {res.stderr.strip() or res.stdout.strip()}")
    return res.stdout


# ---------------------------------------------------------------------------------------------- cgroups


def _fs_type(path: Path) -> str | None:
    """The filesystem type mounted exactly at ``path`` (from /proc/self/mounts)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[1] == str(path):
            found = parts[2]
    return found


def cgroup_mode(root: Path = CGROUP_ROOT) -> str:
    """ "v2" (unified only), "v1" (legacy only), "hybrid" (v1 controllers + a unified mount), or "none"."""
    top = _fs_type(root)
    if top == "cgroup2":
        return "v2"
    has_v1 = any((root / c / "cgroup.procs").exists() for c in ("cpu", "memory", "cpu,cpuacct"))
    has_unified = _fs_type(root / "unified") == "cgroup2"
    if has_v1:
        return "hybrid" if has_unified else "v1"
    return "v2" if (root / "cgroup.controllers").exists() else "none"


def cgroup_controllers(root: Path = CGROUP_ROOT) -> list[str]:
    """Controllers obslab can use: v1 hierarchies mounted, or those the v2 root offers."""
    mode = cgroup_mode(root)
    if mode == "v2":
        try:
            return (root / "cgroup.controllers").read_text().split()
        except OSError:
            return []
    return [c for c in V1_CONTROLLERS if (root / c / "cgroup.procs").exists()]


class Cgroup:
    """One obslab cgroup, e.g. ``obslab/1a2b/app``, in every hierarchy that matters.

    The few knobs labs need are named by what they do; v1 and v2 spell them differently.
    """

    def __init__(self, rel: str, root: Path = CGROUP_ROOT):
        if not (rel == PREFIX or rel.startswith(PREFIX + "/")):
            raise SandboxError(f"cgroup {rel!r}: obslab only creates cgroups under {PREFIX}/")
        self.rel = rel.strip("/")
        self.root = root

    # Subclasses say where the directories are.
    def dirs(self) -> list[Path]:
        raise NotImplementedError

    mode: str = ""

    def exists(self) -> bool:
        return any(d.is_dir() for d in self.dirs())

    def create(self) -> None:
        for d in self.dirs():
            d.mkdir(parents=True, exist_ok=True)

    def add(self, pid: int) -> None:
        for d in self.dirs():
            (d / "cgroup.procs").write_text(f"{pid}\n")

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs():
            with contextlib.suppress(OSError):
                out.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        return out

    def _file(self, name: str) -> Path:
        raise NotImplementedError

    def read(self, knob: str) -> str:
        return self._file(knob).read_text().strip()

    def write(self, knob: str, value: str) -> None:
        self._file(knob).write_text(value + "\n")

    # knobs: (file name, value rendering) per version
    def cpu_quota_knob(self, quota_us: int | None, period_us: int = 100_000) -> tuple[str, str]:
        raise NotImplementedError

    def memory_limit_knob(self, limit: int | None) -> tuple[str, str]:
        raise NotImplementedError

    def cpu_weight_knob(self, tasks: int) -> tuple[str, str]:
        """A CPU weight worth ``tasks`` default-weight tasks (a cgroup competes as ONE entity otherwise)."""
        raise NotImplementedError

    def memory_usage(self) -> int:
        raise NotImplementedError

    def remove(self, timeout: float = 10.0) -> None:
        """Kill what runs inside (it is ours: only obslab puts processes here), then rmdir, deepest first."""
        deadline = time.monotonic() + timeout
        for d in self.dirs():
            if not d.is_dir():
                continue
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _kill_and_rmdir(sub, deadline)
            _kill_and_rmdir(d, deadline)
            # ancestors up to ``obslab`` were created by mkdir -p: remove them once empty (another instance
            # may still use them: then rmdir fails and they stay)
            parts = self.rel.split("/")
            base = d.parents[len(parts) - 1]
            for i in range(len(parts) - 1, 0, -1):
                try:
                    base.joinpath(*parts[:i]).rmdir()
                except OSError:
                    break


def _kill_and_rmdir(d: Path, deadline: float) -> None:
    while True:
        try:
            pids = [int(x) for x in (d / "cgroup.procs").read_text().split()]
        except OSError:
            pids = []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SandboxError(f"cannot remove cgroup {d}: still busy") from None
            time.sleep(0.05)


class CgroupV1(Cgroup):
    mode = "v1"

    def dirs(self) -> list[Path]:
        out: list[Path] = []
        seen: set[Path] = set()
        for c in V1_CONTROLLERS:
            base = self.root / c
            # cpu and cpuacct may be one co-mounted hierarchy (symlinks to cpu,cpuacct): count it once
            if (base / "cgroup.procs").exists() and base.resolve() not in seen:
                seen.add(base.resolve())
                out.append(base / self.rel)
        return out

    def _file(self, name: str) -> Path:
        ctrl = name.split(".", 1)[0]
        if ctrl == "cpuacct" and not (self.root / "cpuacct").exists():
            ctrl = "cpu"
        return self.root / ctrl / self.rel / name

    def cpu_quota_knob(self, quota_us: int | None, period_us: int = 100_000) -> tuple[str, str]:
        return "cpu.cfs_quota_us", str(-1 if quota_us is None else quota_us)

    def memory_limit_knob(self, limit: int | None) -> tuple[str, str]:
        return "memory.limit_in_bytes", str(-1 if limit is None else limit)

    def cpu_weight_knob(self, tasks: int) -> tuple[str, str]:
        return "cpu.shares", str(1024 * max(1, tasks))

    def memory_usage(self) -> int:
        return int(self.read("memory.usage_in_bytes"))


class CgroupV2(Cgroup):
    mode = "v2"

    def dirs(self) -> list[Path]:
        return [self.root / self.rel]

    def _file(self, name: str) -> Path:
        return self.root / self.rel / name

    def create(self) -> None:
        # v2: a controller is usable in a child only if every ancestor enables it in cgroup.subtree_control.
        parts = self.rel.split("/")
        for i in range(len(parts)):
            d = self.root.joinpath(*parts[: i + 1])
            d.mkdir(exist_ok=True)
            if i < len(parts) - 1:
                self._enable_controllers(d)
        if parts:
            self._enable_controllers(self.root, only_if_missing=True)

    def _enable_controllers(self, d: Path, only_if_missing: bool = False) -> None:
        try:
            available = (d / "cgroup.controllers").read_text().split()
            enabled = (d / "cgroup.subtree_control").read_text().split()
        except OSError:
            return
        if only_if_missing and d == self.root:
            return  # never change the root's subtree_control: it is not ours
        want = [c for c in ("cpu", "memory", "io", "pids") if c in available and c not in enabled]
        if want:
            with contextlib.suppress(OSError):
                (d / "cgroup.subtree_control").write_text(" ".join("+" + c for c in want) + "\n")

    def cpu_quota_knob(self, quota_us: int | None, period_us: int = 100_000) -> tuple[str, str]:
        return "cpu.max", f"{'max' if quota_us is None else quota_us} {period_us}"

    def memory_limit_knob(self, limit: int | None) -> tuple[str, str]:
        return "memory.max", "max" if limit is None else str(limit)

    def cpu_weight_knob(self, tasks: int) -> tuple[str, str]:
        return "cpu.weight", str(min(10000, 100 * max(1, tasks)))

    def memory_usage(self) -> int:
        return int(self.read("memory.current"))


def cgroup(rel: str, root: Path = CGROUP_ROOT, mode: str | None = None) -> Cgroup:
    """The cgroup ``rel`` for this machine's mode (v1 and hybrid use the v1 controllers)."""
    mode = mode or cgroup_mode(root)
    if mode == "v2":
        return CgroupV2(rel, root)
    if mode in ("v1", "hybrid"):
        return CgroupV1(rel, root)
    raise SandboxError("no usable cgroup filesystem under /sys/fs/cgroup (see `obslab doctor`)")


def obslab_cgroup_tops(root: Path = CGROUP_ROOT) -> list[Path]:
    """Every ``obslab`` directory at the top of a hierarchy (v1 controllers, the unified mount, v2 root)."""
    tops = []
    candidates = [root / "obslab", root / "unified" / "obslab"]
    with contextlib.suppress(OSError):
        candidates += [d / "obslab" for d in root.iterdir() if d.is_dir()]
    for c in candidates:
        if c.is_dir() and c not in tops:
            tops.append(c)
    return tops


# ----------------------------------------------------------------------------------------- network


def instance_id(state: Path) -> str:
    """Four hex digits naming one obslab state directory's kernel objects (netns ``obslab-1a2b``)."""
    return hashlib.sha1(str(state.resolve()).encode()).hexdigest()[:4]


@dataclass
class NetPlan:
    """The names and addresses of one demo sandbox's network: a netns joined to the root ns by a veth."""

    iid: str

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.iid}"

    @property
    def veth_host(self) -> str:  # IFNAMSIZ is 16: "obslab-1a2bh" fits
        return f"{PREFIX}-{self.iid}h"

    @property
    def veth_ns(self) -> str:
        return f"{PREFIX}-{self.iid}n"

    def _base(self) -> tuple[int, int]:
        idx = int(self.iid, 16) % 16384
        return idx >> 6, (idx & 63) * 4

    @property
    def host_addr(self) -> str:
        a, b = self._base()
        return f"10.231.{a}.{b + 1}"

    @property
    def ns_addr(self) -> str:
        a, b = self._base()
        return f"10.231.{a}.{b + 2}"


def netns_list() -> list[str]:
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def links() -> list[str]:
    out = run(["ip", "-o", "link", "show"], check=False)
    names = []
    for line in out.splitlines():
        parts = line.split(": ")
        if len(parts) > 1:
            names.append(parts[1].split("@")[0])
    return names


def nft_tables(netns: str | None = None) -> list[tuple[str, str]]:
    out = run(["nft", "list", "tables"], check=False, netns=netns)
    tables = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table":
            tables.append((parts[1], parts[2]))
    return tables


def root_qdisc(dev: str) -> str:
    """The root qdisc kind of ``dev`` ("noqueue", "tbf", ...), or "" if the device is gone."""
    out = run(["tc", "qdisc", "show", "dev", dev, "root"], check=False)
    parts = out.split()
    return parts[1] if len(parts) > 1 else ""


def create_netns(plan: NetPlan) -> None:
    run(["ip", "netns", "add", plan.netns])
    run(["ip", "-n", plan.netns, "link", "set", "lo", "up"])


def create_veth(plan: NetPlan) -> None:
    run(["ip", "link", "add", plan.veth_host, "type", "veth", "peer", "name", plan.veth_ns])
    run(["ip", "link", "set", plan.veth_ns, "netns", plan.netns])
    run(["ip", "addr", "add", f"{plan.host_addr}/30", "dev", plan.veth_host])
    run(["ip", "link", "set", plan.veth_host, "up"])
    run(["ip", "-n", plan.netns, "addr", "add", f"{plan.ns_addr}/30", "dev", plan.veth_ns])
    run(["ip", "-n", plan.netns, "link", "set", plan.veth_ns, "up"])


def delete_netns(name: str) -> None:
    if name in netns_list():
        run(["ip", "netns", "del", name], check=False)


def delete_link(name: str) -> None:
    if name in links():
        run(["ip", "link", "del", name], check=False)


def delete_qdisc(dev: str) -> None:
    if root_qdisc(dev) not in ("", "noqueue"):
        run(["tc", "qdisc", "del", "dev", dev, "root"], check=False)


def delete_nft_table(family: str, name: str, netns: str | None = None) -> None:
    if netns and netns not in netns_list():
        return  # the table died with its namespace
    if (family, name) in nft_tables(netns):
        run(["nft", "delete", "table", family, name], check=False, netns=netns)


# ------------------------------------------------------------------------------------------ mounts


def mounts_under(prefix: Path) -> list[str]:
    out = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1].replace("\\040", " ")
            if target == str(prefix) or target.startswith(str(prefix).rstrip("/") + "/"):
                out.append(target)
    return out


def loop_devices() -> Iterator[tuple[str, str]]:
    """(device, backing file) for every loop device in use."""
    base = Path("/sys/block")
    with contextlib.suppress(OSError):
        for d in base.glob("loop*"):
            with contextlib.suppress(OSError):
                back = (d / "loop" / "backing_file").read_text().strip()
                yield f"/dev/{d.name}", back


def unmount(target: str) -> None:
    if target in mounts_under(Path(target)):
        res = subprocess.run(["umount", target], capture_output=True, text=True)
        if res.returncode != 0:  # busy (a culprit still holds a file): detach now, freed when released
            subprocess.run(["umount", "-l", target], capture_output=True)


def detach_loops(backing_prefix: Path, timeout: float = 10.0) -> None:
    """Detach loop devices backed by files under ``backing_prefix``; waits for the kernel to finish.

    After a (lazy) umount the device is released asynchronously, and ``losetup -d`` on a device still in
    use only marks it for auto-clear: poll until it is really gone.
    """
    deadline = time.monotonic() + timeout
    while True:
        mine = [dev for dev, back in loop_devices() if back.startswith(str(backing_prefix))]
        if not mine:
            return
        for dev in mine:
            subprocess.run(["losetup", "-d", dev], capture_output=True)
        if time.monotonic() > deadline:
            raise SandboxError(f"loop device(s) {', '.join(mine)} still attached to {backing_prefix}")
        time.sleep(0.2)
