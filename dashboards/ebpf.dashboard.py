"""eBPF deep-dive: latency distributions and kernel events that /proc cannot show.

Counters in /proc say *how much*; tracepoint histograms say *how long each one waited*, which is
what users feel. Heatmaps show the whole distribution over time; percentile lines summarise it.
"""

from obslab.dashboards.panels import ANY_BAD, dashboard, heatmap, row, sel, stat, thresholds, timeseries

RI = "$__rate_interval"
S = sel()


def pct(metric: str, by: str, legend: str) -> list[tuple[str, str]]:
    """p50/p90/p99 lines of a histogram, per ``by`` labels."""
    return [
        (
            f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{S}[{RI}])))",
            f"p{int(q * 100)} {legend}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


scheduler = row(
    "Scheduler: run-queue latency",
    [
        heatmap(
            "Run-queue latency heatmap",
            "How long runnable tasks waited for a CPU (sched_wakeup → sched_switch), every task, every "
            "wake-up. A healthy box lives in the microseconds; a saturated CPU pushes the mass up into "
            "milliseconds. Bad: a band at 10 ms and above.",
            f"sum by (le) (rate(obslab_runqueue_latency_seconds_bucket{S}[{RI}]))",
        ),
        timeseries(
            "Run-queue latency percentiles",
            "p50/p90/p99 of the time runnable tasks waited for a CPU. Buckets are powers of two, so values "
            "are within a factor of 2. Bad: p99 above ~10 ms (a request path waits that long at every "
            "wake-up).",
            pct("obslab_runqueue_latency_seconds", "instance", "{{instance}}"),
            "s",
            w=12,
            h=9,
            log=True,
            steps=thresholds((None, "green"), (0.01, "red")),
        ),
    ],
)

block = row(
    "Block IO latency",
    [
        heatmap(
            "Block IO latency heatmap",
            "Time from a request's issue to the driver until its completion (block_rq_issue → "
            "block_rq_complete), all devices. Bad: a second band far above the first (a queue behind fsyncs "
            "or a throttled device).",
            f"sum by (le) (rate(obslab_block_io_latency_seconds_bucket{S}[{RI}]))",
        ),
        timeseries(
            "Block IO latency percentiles",
            "p50/p90/p99 per device and operation. Device latency excludes time queued in the scheduler "
            "before issue. Bad: p99 of writes above tens of ms on an SSD or virtual disk.",
            pct("obslab_block_io_latency_seconds", "device, op", "{{device}} {{op}}"),
            "s",
            w=12,
            h=9,
            log=True,
        ),
        timeseries(
            "Block IOs per second",
            "Completed requests per second per device and operation (the histogram's count).",
            (
                f"sum by (device, op) (rate(obslab_block_io_latency_seconds_count{S}[{RI}]))",
                "{{device}} {{op}}",
            ),
            "iops",
            w=24,
            h=6,
        ),
    ],
)

events = row(
    "Kernel events",
    [
        timeseries(
            "TCP retransmits (tracepoint)",
            "Segments the kernel retransmitted (tcp:tcp_retransmit_skb), by address family and TCP state. "
            "Each is a lost or late packet and a latency spike for its connection. Bad: sustained on "
            "ESTABLISHED.",
            (f"sum by (family, state) (rate(obslab_tcp_retransmits_total{S}[{RI}]))", "{{family}} {{state}}"),
            "pps",
            min=0,
        ),
        timeseries(
            "OOM victims",
            "Processes chosen by the OOM killer (oom:mark_victim), by command name, per rate interval. Bad: "
            "any; the same name again and again is a leak being restarted.",
            (f"sum by (comm) (increase(obslab_oom_victims_total{S}[{RI}])) > 0", "{{comm}}"),
            "short",
            min=0,
            steps=ANY_BAD,
        ),
        timeseries(
            "Execs per second",
            "New programs started (sched:sched_process_exec). Bad: a steady high rate is a fork/exec loop "
            "(a crash-looping helper, a shell script in a hot path).",
            (f"sum by (instance) (rate(obslab_process_execs_total{S}[{RI}]))", "{{instance}}"),
            "ops",
            min=0,
        ),
        timeseries(
            "Top syscalls",
            "The 10 most frequent system calls (raw_syscalls:sys_enter), per second. A spike in one call "
            "points at the workload: fsync/write for a writer, futex for lock contention, epoll_wait for "
            "an idle server.",
            (f"topk(10, sum by (syscall) (rate(obslab_syscalls_total{S}[{RI}])))", "{{syscall}}"),
            "ops",
            w=12,
            h=9,
        ),
        stat(
            "Probes attached",
            "Probes attached to their tracepoints out of those declared. Bad: fewer than all: a panel above "
            "is empty for that reason (`obslab doctor` says why).",
            [
                (f"sum(obslab_ebpf_probe_attached{S})", "attached"),
                (f"count(obslab_ebpf_probe_attached{S})", "declared"),
            ],
            "short",
            w=12,
            h=9,
            steps=thresholds((None, "blue")),
        ),
    ],
)

extra = row(
    "More probes: softirqs, drops, reclaim, TCP connect",
    [
        timeseries(
            "Softirq time by vector",
            "CPU seconds per second spent in each soft interrupt (irq:softirq_entry → exit): NET_RX/NET_TX "
            "for packets, BLOCK for IO completions, TIMER, RCU... This time is invisible to per-process "
            "accounting. Bad: NET_RX near a whole core (a packet flood), any vector sustained above ~20%.",
            (f"sum by (vector) (rate(obslab_softirq_seconds_total{S}[{RI}]))", "{{vector}}"),
            "s",
            min=0,
        ),
        timeseries(
            "Packet drops by reason",
            "Packets freed as dropped (skb:kfree_skb), by the kernel's drop reason (Linux 5.17+): "
            "NETFILTER_DROP for a firewall rule, TCP_* for protocol drops, NO_SOCKET for a closed port. "
            "Bad: a reason that grows with the symptom (a filter dropping lab traffic, a full queue).",
            (f"topk(8, sum by (reason) (rate(obslab_skb_drops_total{S}[{RI}])))", "{{reason}}"),
            "pps",
            min=0,
        ),
        timeseries(
            "Direct reclaim stalls",
            "p50/p99 time a task spent reclaiming memory itself because free memory ran low "
            "(vmscan direct_reclaim_begin → end), and how many per second. Every stall is latency added to "
            "an allocation. Bad: any sustained rate, p99 in milliseconds.",
            [
                *pct("obslab_direct_reclaim_stall_seconds", "instance", "{{instance}}")[::2],
                (f"sum(rate(obslab_direct_reclaim_stall_seconds_count{S}[{RI}]))", "stalls/s"),
            ],
            "s",
            min=0,
        ),
        timeseries(
            "TCP connect latency",
            "p50/p99 time from SYN sent to ESTABLISHED for outgoing connections (sock:inet_sock_set_state): "
            "one round trip when healthy; a lost SYN adds a whole second (the SYN retransmission timeout). "
            "Bad: p99 at 1 s or more.",
            pct("obslab_tcp_connect_latency_seconds", "instance", "{{instance}}")[::2],
            "s",
            w=12,
            min=0,
        ),
        timeseries(
            "TCP connect failures",
            "Outgoing connections that closed before being established (refused, reset, timed out), per "
            "second. Bad: any sustained rate: a dependency is down or a port is blocked.",
            (f"sum(rate(obslab_tcp_connect_failures_total{S}[{RI}]))", "failures/s"),
            "ops",
            w=12,
            min=0,
        ),
    ],
)

dashboard = dashboard(
    uid="obslab-ebpf",
    title="obslab / eBPF deep-dive",
    description="Tracepoint histograms and events: run-queue and block IO latency, retransmits, OOM, syscalls, "
    "execs, softirqs, packet drops, direct reclaim, TCP connect latency.",
    anchor="obslab_ebpf_probe_attached",
    tags=["ebpf"],
    panels=[*scheduler, *block, *events, *extra],
)
