"""TCP active-open (connect) latency and failures, from socket state changes (sock:inet_sock_set_state)."""

from __future__ import annotations

from typing import ClassVar

from obslab.exporters.ebpf.probe import Counter, Histogram, Probe, register


@register
class TcpConnect(Probe):
    """Time from SYN sent to ESTABLISHED for outgoing TCP connections, and connects that failed."""

    name = "tcp_connect"
    handlers: ClassVar[dict[str, str]] = {"sock:inet_sock_set_state": "obslab_tcp_state"}
    errors_map = "obslab_tcp_connect_errors"
    exports = (
        Histogram(
            "obslab_tcp_connect_latency_seconds",
            "Time outgoing TCP connections took from SYN sent to established, in seconds.",
            min_slot=10,  # 1 µs
            max_slot=36,  # 69 s: covers SYN retries
        ),
        Counter(
            "obslab_tcp_connect_failures_total",
            "Outgoing TCP connections that closed before being established (refused, timed out, reset).",
        ),
    )
    source = r"""
/* Keyed by the socket address as the tracepoint reports it: a value used as an identity, never
   dereferenced. TCP states: include/net/tcp_states.h (stable). */
#define OBSLAB_TCP_ESTABLISHED 1
#define OBSLAB_TCP_SYN_SENT 2
#define OBSLAB_IPPROTO_TCP 6
BPF_HASH(obslab_tcp_connect_start, u64, u64, 16384);
BPF_PERCPU_ARRAY(obslab_tcp_connect_latency_seconds, u64, 65);
BPF_PERCPU_ARRAY(obslab_tcp_connect_failures_total, u64, 1);
BPF_PERCPU_ARRAY(obslab_tcp_connect_errors, u64, 1);

int obslab_tcp_state(struct tracepoint__sock__inet_sock_set_state *args)
{
    if (args->protocol != OBSLAB_IPPROTO_TCP)
        return 0;
    u64 sk = (u64)args->skaddr;
    u32 zero = 0;
    if (args->newstate == OBSLAB_TCP_SYN_SENT) {
        u64 ts = bpf_ktime_get_ns();
        if (obslab_tcp_connect_start.update(&sk, &ts) != 0) {
            u64 *e = obslab_tcp_connect_errors.lookup(&zero);
            if (e) *e += 1;
        }
        return 0;
    }
    if (args->oldstate != OBSLAB_TCP_SYN_SENT)
        return 0;
    u64 *tsp = obslab_tcp_connect_start.lookup(&sk);
    if (!tsp)
        return 0;
    u64 delta = bpf_ktime_get_ns() - *tsp;
    obslab_tcp_connect_start.delete(&sk);
    if (args->newstate != OBSLAB_TCP_ESTABLISHED) {
        u64 *f = obslab_tcp_connect_failures_total.lookup(&zero);
        if (f) *f += 1;
        return 0;
    }
    u32 slot = obslab_slot(delta);
    u64 *v = obslab_tcp_connect_latency_seconds.lookup(&slot);
    if (v) *v += 1;
    u32 sum = OBSLAB_SUM_SLOT;
    v = obslab_tcp_connect_latency_seconds.lookup(&sum);
    if (v) *v += delta;
    return 0;
}
"""
