"""The labs' contribution to `obslab doctor`: the tools and kernel features the lab sandbox uses."""

from __future__ import annotations

import os
from pathlib import Path

from obslab.labs import sandbox

from obslab.doctor import Finding, _found, check
from obslab.paths import find_binary

#: binary -> Debian package
LAB_TOOLS = {
    "ip": "iproute2",
    "tc": "iproute2",
    "nft": "nftables",
    "mkfs.ext4": "e2fsprogs",
    "losetup": "mount",
}


@check("lab tools", area="labs")
def lab_tools() -> Finding:
    """iproute2 (ip, tc), nft, mkfs.ext4 and losetup: the labs' sandbox is built with them."""
    missing = sorted({pkg for b, pkg in LAB_TOOLS.items() if not find_binary(b)})
    if missing:
        return _found(
            "lab tools", False, f"missing: {', '.join(missing)}", f"apt-get install {' '.join(missing)}"
        )
    return _found("lab tools", True, "ip, tc, nft, mkfs.ext4, losetup")


@check("lab cgroups", area="labs")
def lab_cgroups() -> Finding:
    """The cpu and memory controllers the labs put quotas and limits on (v1, v2 or hybrid)."""
    mode = sandbox.cgroup_mode()
    ctrls = sandbox.cgroup_controllers()
    need = {"cpu", "memory"} - set(ctrls)
    if mode == "none" or need:
        return _found(
            "lab cgroups",
            False,
            f"cgroup mode {mode}; missing controllers: {', '.join(sorted(need)) or '-'}",
            "boot with cgroups enabled (systemd.unified_cgroup_hierarchy=1 for v2) and the cpu and memory controllers",
        )
    return _found("lab cgroups", True, f"{mode}: {', '.join(ctrls)}")


@check("lab loop devices", area="labs")
def lab_loop() -> Finding:
    """Loop devices: the disk labs mount a small ext4 image so the host's filesystems never fill."""
    if Path("/dev/loop-control").exists():
        return _found("lab loop devices", True, "/dev/loop-control present")
    return _found(
        "lab loop devices", False, "no /dev/loop-control: the disk labs cannot run", "modprobe loop"
    )


@check("lab network namespaces", area="labs")
def lab_netns() -> Finding:
    """Network namespaces and veth pairs (the network labs' traffic crosses a veth into a namespace)."""
    if not os.path.exists("/proc/self/ns/net"):
        return _found(
            "lab network namespaces", False, "no network namespaces in this kernel", "CONFIG_NET_NS=y"
        )
    return _found(
        "lab network namespaces", True, "network labs use tbf and nftables numgen (no netem needed)"
    )
