"""Pure functions: histogram rebuild, key aggregation, label decoding, kernel table parsers (no root)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
from obslab.exporters.ebpf import blockio, oom, skb_drops, softirq, syscalls, tcp_retransmit
from obslab.exporters.ebpf.kernel import (
    BlockDevices,
    has_bpf_privileges,
    parse_format_fields,
    parse_print_symbolic,
    parse_uevent_devname,
    parse_unistd,
    split_kernel_dev,
)
from obslab.exporters.ebpf.loader import first_error, program_source
from obslab.exporters.ebpf.probe import (
    SUM_SLOT,
    Label,
    aggregate_counter,
    aggregate_histogram,
    percpu_total,
    rebuild_histogram,
)
from obslab.exporters.ebpf.probes import PROBE_TRACEPOINTS, PROBES

SOFTIRQ_FORMAT = """name: softirq_entry
ID: 150
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned int vec;\toffset:8;\tsize:4;\tsigned:0;

print fmt: "vec=%u [action=%s]", REC->vec, __print_symbolic(REC->vec, { 0, "HI" }, { 1, "TIMER" }, { 3, "NET_RX" })
"""

RETRANS_FORMAT = """format:
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
\tfield:__u8 saddr[4];\toffset:34;\tsize:4;\tsigned:0;
print fmt: "family=%s state=%s", __print_symbolic(REC->family, { 2, "AF_INET" }, { 10, "AF_INET6" }), \
__print_symbolic(REC->state, { 1, "TCP_ESTABLISHED" }, { 2, "TCP_SYN_SENT" })
"""


def test_rebuild_histogram_is_cumulative_with_exact_sum_and_count() -> None:
    # slot k holds values < 2**k: 3 values in slot 11 (< 2048 ns), 2 in slot 12, 1 far beyond max_slot.
    slots = {5: 4, 11: 3, 12: 2, 40: 1}
    buckets, total = rebuild_histogram(slots, raw_sum=123_456_789, unit=1e-9, min_slot=10, max_slot=13)
    assert [b[0] for b in buckets] == ["1.024e-06", "2.048e-06", "4.096e-06", "8.192e-06", "+Inf"]
    assert [b[1] for b in buckets] == [4.0, 7.0, 9.0, 9.0, 10.0]  # slot 5 folds into the first bucket
    assert total == pytest.approx(0.123456789)


def test_rebuild_histogram_empty_and_bad_range() -> None:
    buckets, total = rebuild_histogram({}, 0, 1e-9, 10, 11)
    assert buckets == [("1.024e-06", 0.0), ("2.048e-06", 0.0), ("+Inf", 0.0)] and total == 0
    with pytest.raises(ValueError):
        rebuild_histogram({}, 0, 1e-9, 12, 11)


class HistKey(ctypes.Structure):
    _fields_ = [
        ("dev", ctypes.c_uint32),
        ("op", ctypes.c_uint32),
        ("slot", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
    ]


def test_aggregate_labelled_histogram_separates_sum_slot() -> None:
    labels = (Label("device", "dev", lambda d: f"dev{d}"), Label("op", "op", blockio.decode_op))
    rows = [
        (HistKey(1, ord("W"), 12, 0), 5),
        (HistKey(1, ord("W"), SUM_SLOT, 0), 20_000),
        (HistKey(1, ord("R"), 13, 0), 2),
        (HistKey(2, ord("W"), 12, 0), 0),  # a zero slot contributes nothing
    ]
    out = aggregate_histogram(rows, labels)
    assert out == {("dev1", "write"): ({12: 5}, 20_000), ("dev1", "read"): ({13: 2}, 0)}


def test_aggregate_unlabelled_histogram_uses_index_as_slot() -> None:
    rows = [(ctypes.c_int(3), 7), (ctypes.c_int(SUM_SLOT), 99), (ctypes.c_int(4), 0)]
    assert aggregate_histogram(rows, ()) == {(): ({3: 7}, 99)}


def test_aggregate_counter_merges_keys_decoding_to_same_label_and_drops_rejected() -> None:
    names = syscalls.SyscallNames({0: "read", 1: "write", 2: "obscure_call"})
    label = (Label("syscall", None, names),)
    rows = [(0, 5), (1, 0), (2, 3), (511, 4)]
    assert aggregate_counter(rows, label) == {("read",): 5, ("other",): 7}
    reject = (Label("x", None, lambda v: None if v == 1 else str(v)),)
    assert aggregate_counter([(1, 9), (2, 1)], reject) == {("2",): 1}


def test_percpu_total() -> None:
    assert percpu_total([1, 2, 3]) == 6
    assert percpu_total(ctypes.c_ulonglong(7)) == 7
    assert percpu_total((ctypes.c_ulonglong * 2)(4, 5)) == 9


def test_label_decoders() -> None:
    assert [blockio.decode_op(ord(c)) for c in "RWDFN"] == ["read", "write", "discard", "flush", "other"]
    assert tcp_retransmit.decode_family(2) == "ipv4" and tcp_retransmit.decode_family(10) == "ipv6"
    assert tcp_retransmit.decode_family(44) == "other"
    assert tcp_retransmit.decode_state(1) == "established" and tcp_retransmit.decode_state(99) == "other"
    assert oom.decode_comm(b"stress-ng\0\0\0garbage") == "stress-ng"
    assert oom.decode_comm(b"\xff\xfe\0") == "\ufffd\ufffd" and oom.decode_comm(b"\0" * 16) == "?"
    assert softirq.decode_vector(3) == "net_rx" and softirq.decode_vector(15) == "other"


def test_comm_cap_bounds_label_values() -> None:
    cap = oom.CommCap(limit=2)
    assert [cap(c) for c in ["a", "b", "c", "a", "d"]] == ["a", "b", "other", "a", "other"]


def test_parse_print_symbolic_and_fields() -> None:
    assert parse_print_symbolic(SOFTIRQ_FORMAT, "vec") == {0: "HI", 1: "TIMER", 3: "NET_RX"}
    assert parse_print_symbolic(SOFTIRQ_FORMAT, "nope") == {}
    assert parse_format_fields(SOFTIRQ_FORMAT) == ["vec"]
    assert parse_format_fields(RETRANS_FORMAT) == ["state", "saddr"]
    assert tcp_retransmit.state_names(RETRANS_FORMAT, "state") == {1: "established", 2: "syn_sent"}


def test_parse_unistd() -> None:
    text = "#ifndef _ASM\n#define __NR_read 0\n#define __NR_write 1\n#define __NR_syscalls (__NR_x + 1)\n"
    assert parse_unistd(text) == {0: "read", 1: "write"}


def test_kernel_dev_and_uevent() -> None:
    assert split_kernel_dev((254 << 20) | 3) == (254, 3)
    assert parse_uevent_devname("MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n") == "vda"
    assert parse_uevent_devname("MAJOR=1\n") is None


def test_block_devices_from_fixture_sysfs(tmp_path: Path) -> None:
    d = tmp_path / "dev" / "block" / "8:16"
    d.mkdir(parents=True)
    (d / "uevent").write_text("MAJOR=8\nMINOR=16\nDEVNAME=sdb\n")
    devs = BlockDevices(str(tmp_path))
    assert devs.from_kernel_dev((8 << 20) | 16) == "sdb"
    assert devs.name(9, 9) == "9:9"  # unknown (a detached loop device): numbers, still bounded


def test_privileges_from_capabilities() -> None:
    caps = (1 << 38) | (1 << 39)
    assert has_bpf_privileges(f"Name:\tx\nCapEff:\t{caps:016x}\n", euid=1000)
    assert not has_bpf_privileges(f"CapEff:\t{1 << 39:016x}\n", euid=1000)
    assert has_bpf_privileges(f"CapEff:\t{1 << 21:016x}\n", euid=1000)  # CAP_SYS_ADMIN (pre-5.8 kernels)
    assert has_bpf_privileges("", euid=0)


def test_first_error() -> None:
    out = "/virtual/main.c:3:1: warning: x\n/virtual/main.c:9:2: error: use of undeclared identifier 'y'\n"
    assert first_error(out) == "use of undeclared identifier 'y'"
    assert first_error("") == "unknown compiler error"


def test_registry_and_tracepoint_contract() -> None:
    required = {"runqueue", "blockio", "tcp_retransmit", "oom", "syscalls", "execs"}
    assert required <= set(PROBES) and len(PROBES) >= len(required) + 2
    assert PROBE_TRACEPOINTS["runqueue"] == [
        "sched:sched_wakeup",
        "sched:sched_wakeup_new",
        "sched:sched_switch",
    ]
    assert PROBE_TRACEPOINTS["syscalls"] == ["raw_syscalls:sys_enter"]
    for name, tps in PROBE_TRACEPOINTS.items():
        assert tps and all(tp.count(":") == 1 for tp in tps), name


def test_probe_sources_are_distinct_and_metric_names_are_map_names() -> None:
    probes = [info.cls() for info in PROBES.values()]
    src = program_source(probes)
    for p in probes:
        for fn in p.handlers.values():
            assert src.count(f"int {fn}(") == 1, fn
        for spec in p.exports:
            assert spec.map.startswith("obslab_") and f"({spec.map}," in p.source
    # bounded labels: no probe exports pids, ports or addresses
    for p in probes:
        for spec in p.exports:
            assert not {lbl.name for lbl in spec.labels} & {"pid", "port", "sport", "dport", "saddr", "daddr"}


def test_skb_reason_names_from_running_kernel_format() -> None:
    text = '__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 13, "NETFILTER_DROP" })'
    skb_drops.REASONS.update({k: v.lower() for k, v in parse_print_symbolic(text, "reason").items()})
    assert skb_drops.decode_reason(13) == "netfilter_drop" and skb_drops.decode_reason(511) == "other"


def test_every_exported_family_is_documented() -> None:
    from obslab.paths import REPO_ROOT

    doc = (REPO_ROOT / "docs" / "metrics.md").read_text()
    section = doc[doc.index("## eBPF exporter") :]
    names = {spec.map for info in PROBES.values() for spec in info.cls.exports}
    names |= {"obslab_oom_victims_total", "obslab_ebpf_probe_attached", "obslab_ebpf_probe_errors_total"}
    names |= {"obslab_ebpf_programs", "obslab_ebpf_startup_seconds", "obslab_build_info"}
    assert sorted(n for n in names if f"`{n}`" not in section) == []
