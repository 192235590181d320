"""Lab: the one screen a lab run needs (the console renders these same panels).

Top: the symptom, as a user feels it (the demo service's errors and latency). Below: one panel per
resource with the USE signal that most often explains it, so the learner can go from "the SLO is
burning" to "which resource, which signal" without switching dashboards; the deep-dive dashboards
(USE, eBPF, Processes) then say who and why. Nothing here names the injected fault.
"""

from obslab.dashboards.panels import ANY_BAD, dashboard, row, sel, stat, thresholds, timeseries

RI = "$__rate_interval"
S = sel()
CPUS = f"count without (cpu, mode) (obslab_cpu_seconds_total{sel(mode='idle')})"

symptom = row(
    "Symptom: the demo service",
    [
        stat(
            "Lab running",
            "1 while a lab run is active (its faults may be injected at any moment of the run).",
            (f"max(obslab_lab_active{S}) or vector(0)", "lab"),
            "short",
            w=4,
            steps=thresholds((None, "text"), (1, "blue")),
        ),
        stat(
            "Client error ratio (30s)",
            "Share of the load generator's requests that failed or timed out in the last 30 s. The SLO "
            "allows 1%. Bad: above 1%.",
            (f"instance:obslab_demo_client_errors:ratio_rate30s{S}", "errors"),
            "percentunit",
            w=5,
            decimals=1,
            steps=thresholds((None, "green"), (0.01, "red")),
        ),
        stat(
            "Client p99 latency",
            "99th percentile round trip seen by the client. Bad: well above its quiet value (tens of ms).",
            (
                f"histogram_quantile(0.99, sum by (le) "
                f"(rate(obslab_demo_client_request_duration_seconds_bucket{S}[{RI}])))",
                "p99",
            ),
            "s",
            w=5,
            steps=thresholds((None, "green"), (0.25, "orange"), (1, "red")),
        ),
        stat(
            "Alerts firing",
            "Prometheus alerts firing now; their names hint at the resource (docs/alerts.md).",
            'count(ALERTS{alertstate="firing"}) or vector(0)',
            "short",
            w=4,
            steps=ANY_BAD,
        ),
        stat(
            "Requests per second",
            "Requests the service answered per second. Bad: falling while the client keeps sending.",
            (f"sum(rate(obslab_demo_requests_total{S}[{RI}]))", "req/s"),
            "reqps",
            w=6,
            steps=thresholds((None, "blue")),
        ),
        timeseries(
            "Service latency: client vs server p99",
            "Client p99 includes the network; server p99 is only the time inside the service. Both high: "
            "the service is slow (CPU, memory, disk). Only the client high: the network.",
            [
                (
                    f"histogram_quantile(0.99, sum by (le) "
                    f"(rate(obslab_demo_client_request_duration_seconds_bucket{S}[{RI}])))",
                    "client p99",
                ),
                (
                    f"histogram_quantile(0.99, sum by (le) "
                    f"(rate(obslab_demo_request_duration_seconds_bucket{S}[{RI}])))",
                    "server p99",
                ),
            ],
            "s",
            w=12,
            min=0,
        ),
        timeseries(
            "Service outcomes",
            "Client outcomes per second: ok, error, timeout. Errors without timeouts: the server answers "
            "badly (5xx: disk full, OOM restarts). Timeouts: something is slow or lost on the way.",
            (f"sum by (outcome) (rate(obslab_demo_client_requests_total{S}[{RI}]))", "{{outcome}}"),
            "reqps",
            w=12,
            min=0,
            stack=True,
        ),
    ],
)

resources = row(
    "Where to look: one USE signal per resource",
    [
        timeseries(
            "CPU: busy and queued",
            "CPU busy (share of all CPUs) and load per CPU. Busy near 100% with load/CPU above 1: CPU "
            "saturation. Low busy but slow service: look at throttling below.",
            [
                (
                    f"1 - avg without (cpu) (sum without (mode) "
                    f"(rate(obslab_cpu_seconds_total{sel(mode='~idle|iowait|steal')}[{RI}])))",
                    "busy",
                ),
                (f"obslab_load1{S} / {CPUS}", "load1 per CPU"),
            ],
            "percentunit",
            min=0,
        ),
        timeseries(
            "CPU: run-queue latency p99 (eBPF)",
            "How long runnable tasks waited for a CPU (99th percentile). Bad: above ~10 ms.",
            (
                f"histogram_quantile(0.99, sum by (le) (rate(obslab_runqueue_latency_seconds_bucket{S}[{RI}])))",
                "p99",
            ),
            "s",
            min=0,
            steps=thresholds((None, "green"), (0.01, "red")),
        ),
        timeseries(
            "CPU: cgroup throttling",
            "Seconds per second the watched cgroups were held back by their CPU quota. Bad: any sustained value.",
            (f"rate(obslab_cgroup_cpu_throttled_seconds_total{S}[{RI}]) > 0", "{{cgroup}}"),
            "s",
            min=0,
        ),
        timeseries(
            "Memory: pressure and OOM kills",
            "PSI memory 'some' (share of time tasks stalled on memory) and OOM kills per rate interval. Bad: "
            "PSI above 10%, any OOM kill.",
            [
                (f"rate(obslab_pressure_memory_waiting_seconds_total{S}[{RI}])", "PSI some"),
                (f"increase(obslab_vmstat_oom_kill_total{S}[{RI}])", "OOM kills"),
            ],
            "short",
            min=0,
        ),
        timeseries(
            "Disk: busy and IO latency p99",
            "Busiest device's busy share and the p99 block IO latency (eBPF). Bad: busy near 100% or p99 "
            "of tens of ms and climbing.",
            [
                (f"max without (device) (rate(obslab_disk_io_time_seconds_total{S}[{RI}]))", "busy"),
                (
                    f"histogram_quantile(0.99, sum by (le) (rate(obslab_block_io_latency_seconds_bucket{S}[{RI}])))",
                    "IO p99 (s)",
                ),
            ],
            "short",
            min=0,
        ),
        timeseries(
            "Disk: filesystem space used",
            "Share of each filesystem's space in use. Bad: above 90% or climbing fast (ENOSPC ahead).",
            (
                f"1 - obslab_filesystem_avail_bytes{S} / obslab_filesystem_size_bytes{S}",
                "{{mountpoint}}",
            ),
            "percentunit",
            min=0,
            max=1,
            steps=thresholds((None, "green"), (0.9, "red")),
        ),
        timeseries(
            "Network: TCP retransmits",
            "Segments retransmitted per second (lost or late packets). Bad: sustained above a handful per "
            "second on a quiet box.",
            (f"rate(obslab_tcp_retransmitted_segments_total{S}[{RI}])", "retransmits"),
            "pps",
            min=0,
        ),
        timeseries(
            "Network: throughput",
            "Bytes per second received and sent, all interfaces but loopback. Bad: flat at a ceiling (a "
            "capped link).",
            [
                (
                    f"sum without (device) (rate(obslab_network_receive_bytes_total{sel(device='!lo')}[{RI}]))",
                    "rx",
                ),
                (
                    f"sum without (device) (rate(obslab_network_transmit_bytes_total{sel(device='!lo')}[{RI}]))",
                    "tx",
                ),
            ],
            "Bps",
            min=0,
        ),
        timeseries(
            "Network: listen overflows and drops",
            "SYNs dropped because an accept queue was full, per second. Bad: any.",
            [
                (f"rate(obslab_tcp_listen_overflows_total{S}[{RI}])", "overflows"),
                (f"rate(obslab_tcp_listen_drops_total{S}[{RI}])", "drops"),
            ],
            "pps",
            min=0,
        ),
    ],
)

dashboard = dashboard(
    uid="obslab-lab",
    title="obslab / Lab",
    description="Everything a lab run needs on one screen: the service symptom and one USE signal per resource.",
    anchor="up",
    tags=["lab"],
    time_from="now-15m",
    refresh="5s",
    panels=[*symptom, *resources],
)
