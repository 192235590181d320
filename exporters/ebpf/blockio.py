"""Block IO latency by device and operation (biolatency, from tracepoints only)."""

from __future__ import annotations

from typing import ClassVar

from obslab.exporters.ebpf.kernel import BlockDevices
from obslab.exporters.ebpf.probe import Histogram, Label, Probe, register

#: The operation character of the tracepoint's ``rwbs`` string (kernel blk_fill_rwbs) → label value.
OPS = {ord("R"): "read", ord("W"): "write", ord("D"): "discard", ord("F"): "flush"}


def decode_op(code: int) -> str:
    return OPS.get(code, "other")


_devices = BlockDevices()


def decode_device(dev: int) -> str:
    """Kernel dev_t (MAJOR << 20 | MINOR) → device name from /sys/dev/block, e.g. ``vda``."""
    return _devices.from_kernel_dev(dev)


@register
class BlockIO(Probe):
    """Block IO latency, issue to completion, by device and operation."""

    name = "blockio"
    handlers: ClassVar[dict[str, str]] = {
        "block:block_rq_issue": "obslab_bio_issue",
        "block:block_rq_complete": "obslab_bio_complete",
    }
    errors_map = "obslab_bio_errors"
    exports = (
        Histogram(
            "obslab_block_io_latency_seconds",
            "Block IO latency from issue to the driver until completion, in seconds.",
            labels=(Label("device", "dev", decode_device), Label("op", "op", decode_op)),
            min_slot=12,  # 4 µs
            max_slot=34,  # 17 s
        ),
    )
    source = r"""
/* Requests are matched by device + sector (tracepoint arguments only; no struct request pointer read). */
struct obslab_bio_start_key { u32 dev; u32 pad; u64 sector; };
struct obslab_bio_start_val { u64 ts; u32 op; u32 pad; };
struct obslab_bio_hist_key { u32 dev; u32 op; u32 slot; u32 pad; };

BPF_HASH(obslab_bio_start, struct obslab_bio_start_key, struct obslab_bio_start_val, 16384);
BPF_HASH(obslab_block_io_latency_seconds, struct obslab_bio_hist_key, u64, 4096);
BPF_PERCPU_ARRAY(obslab_bio_errors, u64, 1);

/* rwbs is e.g. "WS", "R", "FWS" (preflush + write), "D", "F": skip a leading F when an op follows. */
static __always_inline u32 obslab_bio_op(char c0, char c1)
{
    if (c0 == 'F' && (c1 == 'R' || c1 == 'W' || c1 == 'D'))
        return c1;
    return c0;
}

int obslab_bio_issue(struct tracepoint__block__block_rq_issue *args)
{
    struct obslab_bio_start_key key;
    __builtin_memset(&key, 0, sizeof(key));  /* padding must be zero: the key is compared bytewise */
    key.dev = args->dev;
    key.sector = args->sector;
    struct obslab_bio_start_val val;
    __builtin_memset(&val, 0, sizeof(val));
    val.ts = bpf_ktime_get_ns();
    val.op = obslab_bio_op(args->rwbs[0], args->rwbs[1]);
    if (obslab_bio_start.update(&key, &val) != 0) {
        u32 zero = 0;
        u64 *e = obslab_bio_errors.lookup(&zero);
        if (e) *e += 1;
    }
    return 0;
}

int obslab_bio_complete(struct tracepoint__block__block_rq_complete *args)
{
    struct obslab_bio_start_key key;
    __builtin_memset(&key, 0, sizeof(key));
    key.dev = args->dev;
    key.sector = args->sector;
    struct obslab_bio_start_val *start = obslab_bio_start.lookup(&key);
    if (!start)
        return 0;
    u64 delta = bpf_ktime_get_ns() - start->ts;
    struct obslab_bio_hist_key hk;
    __builtin_memset(&hk, 0, sizeof(hk));
    hk.dev = key.dev;
    hk.op = start->op;
    obslab_bio_start.delete(&key);
    hk.slot = obslab_slot(delta);
    obslab_block_io_latency_seconds.atomic_increment(hk);
    hk.slot = OBSLAB_SUM_SLOT;
    obslab_block_io_latency_seconds.atomic_increment(hk, delta);
    return 0;
}
"""
