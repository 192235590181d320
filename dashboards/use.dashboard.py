"""USE overview: Utilisation, Saturation, Errors of CPU, memory, disk and network (node-mixin layout).

Read it top to bottom: the summary row says *which* resource is in trouble, its row says *how*
(busy, queued, or failing). Brendan Gregg's USE method: for every resource, check all three.
"""

from obslab.dashboards.panels import ANY_BAD, RATIO_STEPS, dashboard, row, sel, stat, thresholds, timeseries

RI = "$__rate_interval"
S = sel()
CPUS = f"count without (cpu, mode) (obslab_cpu_seconds_total{sel(mode='idle')})"
IDLE = "~idle|iowait|steal"

summary = row(
    "Summary",
    [
        stat(
            "CPU busy",
            "Share of all CPU time spent doing work (not idle, iowait or steal), averaged over CPUs. "
            "Bad: above ~90% for minutes, then look at load per CPU and run-queue latency for queuing.",
            f"1 - avg without (cpu) (sum without (mode) (rate(obslab_cpu_seconds_total{sel(mode=IDLE)}[{RI}])))",
            "percentunit",
        ),
        stat(
            "Load per CPU",
            "1-minute load average divided by the number of CPUs: runnable plus uninterruptible (D) tasks per "
            "CPU. Bad: above 1 means tasks are waiting (CPU, or disk for D-state tasks).",
            f"obslab_load1{S} / {CPUS}",
            "short",
            decimals=2,
            steps=thresholds((None, "green"), (1, "orange"), (2, "red")),
        ),
        stat(
            "Memory used",
            "1 - MemAvailable / MemTotal: memory that cannot be reclaimed without swapping or killing. "
            "Page cache is not 'used' here. Bad: above ~90%, with memory pressure (PSI) rising.",
            f"1 - obslab_memory_available_bytes{S} / obslab_memory_total_bytes{S}",
            "percentunit",
        ),
        stat(
            "Pressure (PSI some)",
            "Share of wall time in which at least one task stalled waiting for CPU, memory or IO "
            "(/proc/pressure, Linux 4.20+). Bad: memory or IO above 10% is felt as latency by every service.",
            [
                (f"rate(obslab_pressure_cpu_waiting_seconds_total{S}[{RI}])", "cpu"),
                (f"rate(obslab_pressure_memory_waiting_seconds_total{S}[{RI}])", "mem"),
                (f"rate(obslab_pressure_io_waiting_seconds_total{S}[{RI}])", "io"),
            ],
            "percentunit",
            w=4,
            steps=thresholds((None, "green"), (0.1, "orange"), (0.3, "red")),
        ),
        stat(
            "Disk busy (max)",
            "The busiest block device: share of time it had at least one request in flight (iostat %util). "
            "Bad: near 100% with a growing queue; SSDs serve requests in parallel, so confirm with latency.",
            f"max without (device) (rate(obslab_disk_io_time_seconds_total{S}[{RI}]))",
            "percentunit",
        ),
        stat(
            "Network throughput",
            "Bytes per second received and sent on all interfaces except loopback. Compare with the link's "
            "capacity: a lab link capped at a few Mbit/s saturates long before a real NIC.",
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
            w=4,
            steps=thresholds((None, "blue")),
        ),
        stat(
            "Active alerts",
            "Alerts firing now (Prometheus ALERTS). Each alert's runbook annotation links to docs/alerts.md. "
            "Bad: anything above 0.",
            'count(ALERTS{alertstate="firing"}) or vector(0)',
            "short",
            steps=ANY_BAD,
        ),
    ],
)

cpu = row(
    "CPU",
    [
        timeseries(
            "CPU utilisation by mode",
            "Average share of each CPU spent per mode. user/system are work; iowait is idle waiting for disk; "
            "steal is time the hypervisor gave to another VM. Bad: user+system near 100%, or steal above 10%.",
            (
                f"avg without (cpu) (rate(obslab_cpu_seconds_total{sel(mode='!idle')}[{RI}]))",
                "{{mode}} {{instance}}",
            ),
            "percentunit",
            min=0,
            max=1,
            stack=True,
        ),
        timeseries(
            "CPU saturation",
            "Load per CPU and CPU pressure (share of time some task waited for a CPU). Load counts D-state "
            "tasks too, PSI only CPU waits. Bad: load/CPU above 1 and PSI cpu above 10%.",
            [
                (f"obslab_load1{S} / {CPUS}", "load1 per CPU {{instance}}"),
                (f"obslab_procs_running{S} / {CPUS}", "runnable per CPU {{instance}}"),
                (f"rate(obslab_pressure_cpu_waiting_seconds_total{S}[{RI}])", "PSI cpu some {{instance}}"),
            ],
            "short",
            min=0,
            steps=thresholds((None, "green"), (1, "red")),
        ),
        timeseries(
            "CPU throttling (cgroup quota)",
            "Seconds per second that watched cgroups were throttled by their CPU quota (cpu.cfs_quota_us / "
            "cpu.max). The kernel reports no CPU 'errors'; a quota refusing work is the closest. Bad: any "
            "sustained value: the service is slowed while the host may look idle.",
            (
                f"rate(obslab_cgroup_cpu_throttled_seconds_total{S}[{RI}]) > 0",
                "{{cgroup}} {{instance}}",
            ),
            "s",
            min=0,
        ),
    ],
)

memory = row(
    "Memory",
    [
        timeseries(
            "Memory utilisation",
            "Used (total - available), page cache, buffers and free memory. Cache is reclaimable; 'used' is "
            "not. Bad: used approaching total while cache shrinks to nothing.",
            [
                (
                    f"obslab_memory_total_bytes{S} - obslab_memory_available_bytes{S}",
                    "used {{instance}}",
                ),
                (f"obslab_memory_cached_bytes{S}", "cached {{instance}}"),
                (f"obslab_memory_buffers_bytes{S}", "buffers {{instance}}"),
                (f"obslab_memory_free_bytes{S}", "free {{instance}}"),
            ],
            "bytes",
            min=0,
            w=6,
        ),
        timeseries(
            "Memory pressure (PSI)",
            "some: share of time at least one task stalled on memory (reclaim, swap-in, refaults); full: "
            "share of time all non-idle tasks stalled at once. Bad: some above 10%, any sustained full.",
            [
                (f"rate(obslab_pressure_memory_waiting_seconds_total{S}[{RI}])", "some {{instance}}"),
                (f"rate(obslab_pressure_memory_stalled_seconds_total{S}[{RI}])", "full {{instance}}"),
            ],
            "percentunit",
            min=0,
            w=6,
            steps=thresholds((None, "green"), (0.1, "red")),
        ),
        timeseries(
            "Paging and reclaim",
            "Major faults (a page read back from disk or swap), swap-ins/outs and pages scanned by direct "
            "reclaim (an allocating task had to free memory itself). Bad: sustained major faults or direct scans.",
            [
                (f"rate(obslab_vmstat_pgmajfault_total{S}[{RI}])", "major faults {{instance}}"),
                (f"rate(obslab_vmstat_pswpin_total{S}[{RI}])", "swap in {{instance}}"),
                (f"rate(obslab_vmstat_pswpout_total{S}[{RI}])", "swap out {{instance}}"),
                (f"rate(obslab_vmstat_pgscan_direct_total{S}[{RI}])", "direct scan {{instance}}"),
            ],
            "ops",
            min=0,
            w=6,
        ),
        timeseries(
            "OOM kills",
            "Processes the kernel's OOM killer ended (whole machine or a cgroup over its limit), per rate "
            "interval. Bad: any. Find the victim with the eBPF dashboard's OOM panel or `dmesg`.",
            (f"increase(obslab_vmstat_oom_kill_total{S}[{RI}])", "{{instance}}"),
            "short",
            min=0,
            w=6,
            steps=ANY_BAD,
        ),
    ],
)

disk = row(
    "Disk",
    [
        timeseries(
            "Disk utilisation (busy)",
            "Share of time each device had IO in flight (iostat %util). Bad: near 100% for an HDD; on SSDs "
            "and virtual disks check latency and queue depth too.",
            (f"rate(obslab_disk_io_time_seconds_total{S}[{RI}])", "{{device}} {{instance}}"),
            "percentunit",
            min=0,
            max=1,
            w=6,
            steps=RATIO_STEPS,
        ),
        timeseries(
            "Disk throughput",
            "Bytes read and written per second per device.",
            [
                (f"rate(obslab_disk_read_bytes_total{S}[{RI}])", "read {{device}}"),
                (f"rate(obslab_disk_written_bytes_total{S}[{RI}])", "write {{device}}"),
            ],
            "Bps",
            min=0,
            w=6,
        ),
        timeseries(
            "Disk saturation (queue, latency)",
            "Average requests in flight (iostat aqu-sz, from weighted IO time) and average wait per request "
            "(await). Bad: a queue above ~1 per spindle, await well above the device's usual milliseconds.",
            [
                (f"rate(obslab_disk_io_time_weighted_seconds_total{S}[{RI}])", "queue {{device}}"),
                (
                    f"(rate(obslab_disk_read_time_seconds_total{S}[{RI}]) + "
                    f"rate(obslab_disk_write_time_seconds_total{S}[{RI}])) / "
                    f"(rate(obslab_disk_reads_completed_total{S}[{RI}]) + "
                    f"rate(obslab_disk_writes_completed_total{S}[{RI}]))",
                    "await s {{device}}",
                ),
                (f"rate(obslab_pressure_io_waiting_seconds_total{S}[{RI}])", "PSI io some {{instance}}"),
            ],
            "short",
            min=0,
            w=6,
        ),
        timeseries(
            "Filesystem space used (errors)",
            "Share of each filesystem's space in use. Disks report no error counter here: the error users "
            "meet is ENOSPC when a filesystem fills (and read-only remounts after IO errors). Bad: above 90%.",
            (
                f"1 - obslab_filesystem_avail_bytes{S} / obslab_filesystem_size_bytes{S}",
                "{{mountpoint}} {{instance}}",
            ),
            "percentunit",
            min=0,
            max=1,
            w=6,
            steps=RATIO_STEPS,
        ),
    ],
)

network = row(
    "Network",
    [
        timeseries(
            "Network utilisation",
            "Bytes per second received (+) and sent (-) per interface, loopback excluded. Bad: flat at the "
            "link's capacity (a shaped link shows a hard ceiling).",
            [
                (f"rate(obslab_network_receive_bytes_total{sel(device='!lo')}[{RI}])", "rx {{device}}"),
                (f"-rate(obslab_network_transmit_bytes_total{sel(device='!lo')}[{RI}])", "tx {{device}}"),
            ],
            "Bps",
        ),
        timeseries(
            "Network saturation (TCP)",
            "TCP segments retransmitted (lost or delayed packets, a congested or lossy path), and SYNs dropped "
            "because an accept queue was full (listen overflows: the server is not accepting fast enough). "
            "Bad: retransmits above ~1% of segments sent; any listen overflow.",
            [
                (f"rate(obslab_tcp_retransmitted_segments_total{S}[{RI}])", "retransmits {{instance}}"),
                (f"rate(obslab_tcp_listen_overflows_total{S}[{RI}])", "listen overflows {{instance}}"),
                (f"rate(obslab_tcp_listen_drops_total{S}[{RI}])", "listen drops {{instance}}"),
            ],
            "pps",
            min=0,
        ),
        timeseries(
            "Network errors and drops",
            "Packets per second received or sent with errors, or dropped by the interface (full rings or "
            "queues). Bad: any sustained non-zero value.",
            [
                (f"rate(obslab_network_receive_errs_total{S}[{RI}])", "rx errs {{device}}"),
                (f"rate(obslab_network_transmit_errs_total{S}[{RI}])", "tx errs {{device}}"),
                (f"rate(obslab_network_receive_drop_total{S}[{RI}])", "rx drop {{device}}"),
                (f"rate(obslab_network_transmit_drop_total{S}[{RI}])", "tx drop {{device}}"),
            ],
            "pps",
            min=0,
        ),
    ],
)

exporter = row(
    "Exporter self-monitoring",
    [
        timeseries(
            "Targets up",
            "1 when Prometheus scraped the target on its last attempt. Bad: 0: the exporter is down or slow.",
            (f"up{S}", "{{job}} {{instance}}"),
            "short",
            min=0,
            max=1,
        ),
        timeseries(
            "Collectors failing",
            "Collectors whose last run raised (obslab_scrape_collector_success 0). The others keep being "
            "served; the exporter's log says why. Bad: any series here.",
            (f"obslab_scrape_collector_success{S} == 0", "{{collector}} {{instance}}"),
            "short",
            min=0,
        ),
        timeseries(
            "Collector duration",
            "Wall time each collector took on the last scrape. Bad: approaching the scrape interval (5s).",
            (f"obslab_scrape_collector_duration_seconds{S}", "{{collector}}"),
            "s",
            min=0,
        ),
        timeseries(
            "Scrape duration and samples",
            "How long Prometheus' scrape of each target took (scrape_duration_seconds).",
            (f"scrape_duration_seconds{S}", "{{job}} {{instance}}"),
            "s",
            min=0,
        ),
        timeseries(
            "eBPF probes attached",
            "1 per probe attached to its tracepoints, 0 if it could not attach (see `obslab doctor`).",
            (f"obslab_ebpf_probe_attached{S}", "{{probe}}"),
            "short",
            min=0,
            max=1,
        ),
    ],
    collapsed=True,
)

dashboard = dashboard(
    uid="obslab-use",
    title="obslab / USE overview",
    description="Utilisation, Saturation and Errors of CPU, memory, disk and network on each host.",
    anchor="obslab_cpu_seconds_total",
    tags=["use", "node"],
    panels=[*summary, *cpu, *memory, *disk, *network, *exporter],
)
