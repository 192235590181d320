"""Known workloads, counted by the real probes attached to this kernel (root; the bcc tools' checklist)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from .conftest import poll, requires_bpf, run, value

pytestmark = [requires_bpf, pytest.mark.root, pytest.mark.bpf]


def _block_device_of(path: str) -> str | None:
    """The whole-disk name under the filesystem holding ``path`` (block tracepoints report the disk)."""
    st = os.stat(path)
    sys_dir = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if not sys_dir.exists():
        return None  # overlay, tmpfs, btrfs subvolume...: no block device of its own
    real = sys_dir.resolve()
    return real.parent.name if (real / "partition").exists() else real.name


def test_all_builtin_probes_attach(probeset: object, registry: CollectorRegistry) -> None:
    status = probeset.status  # type: ignore[attr-defined]
    assert {n: st.reason for n, st in status.items() if not st.attached} == {}
    for name in status:
        assert value(registry, "obslab_ebpf_probe_attached", {"probe": name}) == 1.0
        assert value(registry, "obslab_scrape_collector_success", {"collector": name}) == 1.0
    assert value(registry, "obslab_ebpf_programs") == 1.0  # all probes built as ONE program


def test_direct_writes_counted_on_the_right_device(registry: CollectorRegistry) -> None:
    """400 x 4 KiB O_DIRECT writes to a file on the real disk → ≥ 400 write IOs on that disk."""
    directory = "/var/tmp"
    device = _block_device_of(directory)
    loop = None
    if device is None:  # no disk under /var/tmp here: use a loop device we create and remove
        fd, backing = tempfile.mkstemp(prefix="obslabtest-ebpf-", dir="/var/tmp")
        os.ftruncate(fd, 8 << 20)
        os.close(fd)
        loop = run("losetup", "--find", "--show", backing).stdout.strip()
        device, target = Path(loop).name, loop
    else:
        fd, target = tempfile.mkstemp(prefix="obslabtest-ebpf-dd-", dir=directory)
        os.close(fd)
    labels = {"device": device, "op": "write"}
    try:
        before = value(registry, "obslab_block_io_latency_seconds_count", labels)
        sum_before = value(registry, "obslab_block_io_latency_seconds_sum", labels)
        run("dd", "if=/dev/zero", f"of={target}", "bs=4k", "count=400", "oflag=direct", "conv=notrunc")
        assert poll(
            lambda: value(registry, "obslab_block_io_latency_seconds_count", labels) - before >= 400
        ), (
            f"only {value(registry, 'obslab_block_io_latency_seconds_count', labels) - before} writes on {device}"
        )
        assert value(registry, "obslab_block_io_latency_seconds_sum", labels) > sum_before
        # the histogram is well formed: cumulative buckets, +Inf == count
        (family,) = [m for m in registry.collect() if m.name == "obslab_block_io_latency_seconds"]
        mine = [
            s for s in family.samples if s.labels.get("device") == device and s.labels.get("op") == "write"
        ]
        inf = [s.value for s in mine if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"]
        assert inf == [s.value for s in mine if s.name.endswith("_count")]
    finally:
        if loop:
            subprocess.run(["losetup", "-d", loop], check=False)
            os.unlink(backing)
        else:
            os.unlink(target)


def test_execs_counted(registry: CollectorRegistry) -> None:
    n = 60
    before = value(registry, "obslab_process_execs_total")
    sys_before = value(registry, "obslab_syscalls_total", {"syscall": "execve"})
    for _ in range(n):
        subprocess.run(["/bin/true"], check=True)
    assert poll(lambda: value(registry, "obslab_process_execs_total") - before >= n)
    assert value(registry, "obslab_syscalls_total", {"syscall": "execve"}) - sys_before >= n


def test_pipe_storm_grows_runqueue_histogram(registry: CollectorRegistry) -> None:
    name = "obslab_runqueue_latency_seconds"
    before = value(registry, f"{name}_count")
    sum_before = value(registry, f"{name}_sum")
    reads_before = value(registry, "obslab_syscalls_total", {"syscall": "read"})
    run(shutil.which("stress-ng") or "stress-ng", "--pipe", "2", "--timeout", "2s", "--quiet", timeout=60)
    assert poll(lambda: value(registry, f"{name}_count") - before >= 1000)
    assert value(registry, f"{name}_sum") > sum_before
    assert value(registry, "obslab_syscalls_total", {"syscall": "read"}) - reads_before >= 1000
    # one scrape's buckets are cumulative (non-decreasing) and end at that scrape's count
    (family,) = [m for m in registry.collect() if m.name == name]
    counts = [s.value for s in family.samples if s.name.endswith("_bucket")]
    (count,) = [s.value for s in family.samples if s.name.endswith("_count")]
    assert counts == sorted(counts) and counts[-1] == count


# ---------------------------------------------------------------------------------------------------------
# TCP retransmits: two namespaces, a veth between them, nftables dropping ~10% at the receiver
# ---------------------------------------------------------------------------------------------------------

NS1, NS2 = "obslabtest-ebpf-ns1", "obslabtest-ebpf-ns2"
NFT_TABLE = "obslabtest_ebpf"

RECEIVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.2", 5001)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
print(n, flush=True)
"""

SENDER = """
import socket, time
for _ in range(50):
    try:
        s = socket.create_connection(("10.77.0.2", 5001), timeout=30); break
    except OSError:
        time.sleep(0.1)
s.sendall(b"x" * (3 << 20)); s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
"""


@pytest.fixture
def lossy_link() -> Iterator[None]:
    def cleanup() -> None:
        subprocess.run(
            ["ip", "netns", "exec", NS2, "nft", "delete", "table", "inet", NFT_TABLE], capture_output=True
        )
        for ns in (NS1, NS2):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)

    cleanup()  # leftovers of an earlier crashed run
    try:
        run("ip", "netns", "add", NS1)
        run("ip", "netns", "add", NS2)
        # Created directly inside the namespaces: the veth never exists in the root namespace.
        run("ip", "link", "add", "veth0", "netns", NS1, "type", "veth", "peer", "name", "veth0", "netns", NS2)
        for ns, addr in ((NS1, "10.77.0.1/24"), (NS2, "10.77.0.2/24")):
            run("ip", "-n", ns, "addr", "add", addr, "dev", "veth0")
            run("ip", "-n", ns, "link", "set", "veth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        rules = (
            f"table inet {NFT_TABLE} {{\n chain input {{\n type filter hook input priority 0; policy accept;\n"
            " tcp dport 5001 numgen random mod 10 == 0 drop\n }\n}\n"
        )
        subprocess.run(["ip", "netns", "exec", NS2, "nft", "-f", "-"], input=rules, text=True, check=True)
        yield
    finally:
        cleanup()


def test_lossy_tcp_transfer_counts_retransmits_and_drops(
    registry: CollectorRegistry, lossy_link: None
) -> None:
    def retrans() -> float:
        return sum(
            s.value for m in registry.collect() if m.name == "obslab_tcp_retransmits" for s in m.samples
        )

    before = retrans()
    nf_before = value(registry, "obslab_skb_drops_total", {"reason": "netfilter_drop"})
    connects_before = value(registry, "obslab_tcp_connect_latency_seconds_count")
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", NS2, sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        run("ip", "netns", "exec", NS1, sys.executable, "-c", SENDER, timeout=120)
        received = receiver.communicate(timeout=60)[0].strip()
        assert received == str(3 << 20)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert poll(lambda: retrans() > before), "no retransmit counted across a 10%-loss link"
    assert value(registry, "obslab_tcp_retransmits_total", {"family": "ipv4", "state": "established"}) > 0
    assert value(registry, "obslab_skb_drops_total", {"reason": "netfilter_drop"}) > nf_before
    assert value(registry, "obslab_tcp_connect_latency_seconds_count") > connects_before


# ---------------------------------------------------------------------------------------------------------
# OOM: a process killed inside a memory cgroup we create
# ---------------------------------------------------------------------------------------------------------

OOM_COMM = "obslabtest-oom"
HOG = f"""
import ctypes
ctypes.CDLL(None).prctl(15, b"{OOM_COMM}", 0, 0, 0)  # PR_SET_NAME: the comm the victim is reported by
hog = []
while True:
    hog.append(b"\\x01" * (8 << 20))  # written, so resident (bytearray(n) would be lazily zero pages)
"""


@pytest.fixture
def memory_cgroup() -> Iterator[Path]:
    v1 = Path("/sys/fs/cgroup/memory")
    if (v1 / "memory.limit_in_bytes").exists():
        cg, limit_file, limit = v1 / "obslabtest-ebpf-oom", "memory.limit_in_bytes", str(48 << 20)
    elif "memory" in Path("/sys/fs/cgroup/cgroup.controllers").read_text(errors="ignore").split():
        cg, limit_file, limit = Path("/sys/fs/cgroup/obslabtest-ebpf-oom"), "memory.max", str(48 << 20)
    else:
        pytest.skip("no memory cgroup controller (neither v1 memory nor v2 with memory enabled)")
    with contextlib.suppress(OSError):
        cg.rmdir()
    cg.mkdir()
    try:
        (cg / limit_file).write_text(limit)
        if (cg / "memory.swappiness").exists():
            with contextlib.suppress(OSError):
                (cg / "memory.swappiness").write_text("0")
        yield cg
    finally:
        for pid in (cg / "cgroup.procs").read_text().split():  # only our hog can be in our cgroup
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        for _ in range(100):
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def test_oom_victim_counted_with_its_comm(registry: CollectorRegistry, memory_cgroup: Path) -> None:
    labels = {"comm": OOM_COMM}
    before = value(registry, "obslab_oom_victims_total", labels)
    procs = memory_cgroup / "cgroup.procs"
    # The shell moves itself into the cgroup, then execs the hog (so the hog starts inside it).
    hog = subprocess.run(
        ["sh", "-c", f'echo $$ > {procs} && exec "$0" -c "$1"', sys.executable, HOG],
        capture_output=True,
        timeout=120,
    )
    assert hog.returncode == -signal.SIGKILL, hog.stderr[-500:]
    assert poll(lambda: value(registry, "obslab_oom_victims_total", labels) - before == 1)
    assert value(registry, "obslab_oom_victims_total", labels) - before == 1  # exactly one victim
