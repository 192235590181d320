"""Pure parsers, tested on strings (the kernel's formats as documented in proc(5) and friends)."""

from __future__ import annotations

import pytest
from obslab.exporters.host._procscan import parse_pid_stat
from obslab.exporters.host.cgroups import parse_cpu_max, parse_flat_keyed, parse_memory_max
from obslab.exporters.host.cpu import parse_cpu_lines
from obslab.exporters.host.diskstats import IGNORED_DEVICES, parse_diskstats
from obslab.exporters.host.filesystem import parse_mounts
from obslab.exporters.host.loadavg import parse_loadavg
from obslab.exporters.host.meminfo import parse_meminfo
from obslab.exporters.host.netdev import parse_netdev
from obslab.exporters.host.netstat import parse_snmp
from obslab.exporters.host.pressure import parse_pressure
from obslab.exporters.host.process import group_name, parse_pid_io
from obslab.exporters.host.processes import count_states
from obslab.exporters.host.sockets import parse_sockstat, parse_tcp_states
from obslab.exporters.host.stat import parse_stat
from obslab.exporters.host.vmstat import parse_vmstat


def test_loadavg() -> None:
    assert parse_loadavg("0.39 0.31 0.23 1/88 18425\n") == (0.39, 0.31, 0.23)
    with pytest.raises(ValueError):
        parse_loadavg("")


def test_cpu_lines_skip_total_and_keep_order() -> None:
    text = "cpu  10 0 5 100 1 0 2 3 0 0\ncpu0 6 0 4 50 0 0 1 2 0 0\ncpu1 4 0 1 50 1 0 1 1 7 1\nintr 5 1\n"
    cpus = parse_cpu_lines(text)
    assert list(cpus) == ["0", "1"]
    assert cpus["1"] == [4, 0, 1, 50, 1, 0, 1, 1, 7, 1]


def test_stat() -> None:
    s = parse_stat(
        "cpu  1 2\nintr 12345 0 1\nctxt 957739\nbtime 1795465296\nprocesses 50893\nprocs_running 3\nprocs_blocked 1\nsoftirq 77 1 2\n"
    )
    assert s == {
        "intr": 12345,
        "ctxt": 957739,
        "btime": 1795465296,
        "processes": 50893,
        "procs_running": 3,
        "procs_blocked": 1,
        "softirq": 77,
    }


def test_meminfo_units() -> None:
    m = parse_meminfo("MemTotal:       24683656 kB\nHugePages_Total:       0\nActive(anon):  10 kB\n")
    assert m == {"MemTotal": 24683656 * 1024, "HugePages_Total": 0, "Active(anon)": 10240}


def test_pressure_totals_in_seconds() -> None:
    text = "some avg10=2.03 avg60=1.27 avg300=0.96 total=14768800\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"
    assert parse_pressure(text) == {"some": 14.7688, "full": 5e-6}


def test_vmstat() -> None:
    assert parse_vmstat("oom_kill 3\npgmajfault 1200\n") == {"oom_kill": 3, "pgmajfault": 1200}


def test_diskstats_and_ignored_devices() -> None:
    text = (
        " 254       0 vda 58884 13240 3532858 16476 49027 23177 6144208 25529 0 15296 46042 6704 109 1218648 1620 3292 2415\n"
        "   7       0 loop0 40 0 684 2 6 0 4 0 0 4 4 0 0 0 0 6 0\n"
    )
    disks = parse_diskstats(text)
    assert [d.device for d in disks] == ["vda", "loop0"]
    vda = disks[0]
    assert (vda.reads, vda.read_sectors, vda.writes, vda.io_ms, vda.weighted_io_ms) == (
        58884,
        3532858,
        49027,
        15296,
        46042,
    )
    assert (
        IGNORED_DEVICES.match("loop0")
        and IGNORED_DEVICES.match("sda1")
        and IGNORED_DEVICES.match("nvme0n1p2")
    )
    assert not IGNORED_DEVICES.match("vda") and not IGNORED_DEVICES.match("nvme0n1")


def test_mounts_filter_unescape_and_dedupe() -> None:
    text = (
        "proc /proc proc rw 0 0\n"
        "/dev/vda / ext4 rw,relatime 0 0\n"
        "tmpfs /srv/lab\\040data tmpfs ro,relatime 0 0\n"
        "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"
        "/dev/vdb /data ext4 rw 0 0\n"
        "/dev/vdc /data xfs rw 0 0\n"
    )
    mounts = parse_mounts(text)
    assert [(m.mountpoint, m.fstype) for m in mounts] == [
        ("/", "ext4"),
        ("/srv/lab data", "tmpfs"),
        ("/data", "xfs"),
    ]


def test_netdev() -> None:
    text = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        "    lo:   44256     338    0    0    0     0          0         0    44256     338    0    0    0     0       0          0\n"
        "  eth0: 532706450   12944    1    2    0     0          0         0   576566    7699    3    4    0     0       0          0\n"
    )
    d = parse_netdev(text)
    assert d["eth0"]["receive"]["bytes"] == 532706450 and d["eth0"]["receive"]["drop"] == 2
    assert d["eth0"]["transmit"]["packets"] == 7699 and d["eth0"]["transmit"]["errs"] == 3


def test_snmp_pairs() -> None:
    text = "Tcp: RtoAlgorithm RetransSegs CurrEstab\nTcp: 1 17 -1\nUdp: InDatagrams\nUdp: 56\n"
    assert parse_snmp(text) == {
        "Tcp": {"RtoAlgorithm": 1, "RetransSegs": 17, "CurrEstab": -1},
        "Udp": {"InDatagrams": 56},
    }
    with pytest.raises(ValueError):
        parse_snmp("Tcp: A\nUdp: 1\n")


def test_tcp_states_and_sockstat() -> None:
    text = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1526 1\n"
        "   1: 020200C0:92BC 507100CB:0050 06 00000000:00000000 03:00000360 00000000     0        0 0 3\n"
        "   2: 020200C0:92BD 507100CB:0050 01 00000000:00000000 03:00000360 00000000     0        0 0 3\n"
    )
    counts = parse_tcp_states(text)
    assert (counts["listen"], counts["time_wait"], counts["established"], counts["close_wait"]) == (
        1,
        1,
        1,
        0,
    )
    assert len(counts) == 12  # every state present, bounded
    assert parse_sockstat("TCP: inuse 1 orphan 0 tw 2 alloc 1 mem 129\n")["TCP"]["mem"] == 129


def test_pid_stat_with_hostile_comm() -> None:
    line = b"4242 (a) b (c)) S 1 4242 4242 0 -1 4194304 98 0 0 0 250 50 0 0 20 0 3 0 125416 3133440 373 18446744073709551615 0 0"
    p = parse_pid_stat(4242, line)
    assert (p.comm, p.state, p.utime, p.stime, p.threads, p.starttime, p.rss_pages, p.kthread) == (
        "a) b (c)",
        "S",
        250,
        50,
        3,
        125416,
        373,
        False,
    )
    kthread = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 2 0 0 18446744073709551615"
    assert parse_pid_stat(2, kthread).kthread  # flags 0x208040 has PF_KTHREAD


def test_pid_io_and_group_names() -> None:
    io = b"rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 0\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n"
    assert parse_pid_io(io) == (4096, 8192)
    assert group_name("kworker/0:1H-events_highpri", True) == "kworker"
    assert group_name("my/tool", False) == "my/tool"  # only kernel threads are folded


def test_process_states_all_present() -> None:
    line = b"1 (x) D 0 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 2 0 0 0"
    counts = count_states([parse_pid_stat(1, line), parse_pid_stat(2, line.replace(b" D ", b" Z "))])
    assert counts["blocked"] == 1 and counts["zombie"] == 1 and counts["running"] == 0
    assert set(counts) >= {"running", "sleeping", "blocked", "zombie", "stopped", "idle"}


def test_cgroup_parsers() -> None:
    assert parse_cpu_max("50000 100000\n") == 0.5
    assert parse_cpu_max("max 100000\n") == 0.0
    assert parse_memory_max("max\n") == 0 and parse_memory_max("268435456\n") == 268435456
    assert parse_flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")["oom_kill"] == 2
