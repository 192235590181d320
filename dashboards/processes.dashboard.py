"""Processes and cgroups: *who* is using the resource the USE overview flagged.

Processes are aggregated by name (bounded: the busiest names, the rest as "other"); cgroups are the top
level of the hierarchy plus obslab's own lab cgroups, where quotas and memory limits live.
"""

from obslab.dashboards.panels import ANY_BAD, bars, dashboard, row, sel, thresholds, timeseries

RI = "$__rate_interval"
S = sel()

top = row(
    "Top processes (by name)",
    [
        bars(
            "Top CPU now",
            "CPU cores used by each process name over the last rate interval (1 = one full core). The "
            "first bar is where CPU time goes. Bad: an unexpected name at the top (a runaway batch job).",
            (f"topk(10, sum by (name) (rate(obslab_process_cpu_seconds_total{S}[{RI}])))", "{{name}}"),
            "short",
        ),
        bars(
            "Top resident memory now",
            "Resident memory (RSS) per process name. Bad: a name growing scrape after scrape (a leak), "
            "heading for its cgroup limit or the OOM killer.",
            (f"topk(10, sum by (name) (obslab_process_resident_memory_bytes{S}))", "{{name}}"),
            "bytes",
        ),
        bars(
            "Top storage IO now",
            "Bytes read plus written per second to storage per process name (/proc/PID/io). Bad: a name you "
            "did not expect writing hard (an fsync storm, a runaway logger).",
            (
                f"topk(10, sum by (name) (rate(obslab_process_read_bytes_total{S}[{RI}]) + "
                f"rate(obslab_process_written_bytes_total{S}[{RI}])))",
                "{{name}}",
            ),
            "Bps",
        ),
        timeseries(
            "CPU by process over time",
            "The 5 hungriest process names, cores used. When did the culprit start, and what fell when it did?",
            (f"topk(5, sum by (name) (rate(obslab_process_cpu_seconds_total{S}[{RI}])))", "{{name}}"),
            "short",
            min=0,
        ),
        timeseries(
            "Memory by process over time",
            "RSS of the 5 largest process names. A sawtooth that climbs and drops to zero is a leak being "
            "OOM-killed and restarted.",
            (f"topk(5, sum by (name) (obslab_process_resident_memory_bytes{S}))", "{{name}}"),
            "bytes",
            min=0,
        ),
        timeseries(
            "Storage writes by process over time",
            "Bytes per second written to storage by the 5 heaviest writers.",
            (f"topk(5, sum by (name) (rate(obslab_process_written_bytes_total{S}[{RI}])))", "{{name}}"),
            "Bps",
            min=0,
        ),
        timeseries(
            "Processes by state",
            "How many processes are running, blocked in uninterruptible sleep (D, usually waiting for IO) "
            "or zombie. Bad: a growing 'blocked' count (the load average counts them), zombies piling up.",
            (f"obslab_processes{sel(state='~running|blocked|zombie')}", "{{state}}"),
            "short",
            min=0,
        ),
        timeseries(
            "Threads and open files by process",
            "Threads and open file descriptors of the 5 names with most of each. Bad: a count that only grows "
            "(a thread or fd leak ends in EMFILE or hitting threads-max).",
            [
                (f"topk(5, sum by (name) (obslab_process_threads{S}))", "threads {{name}}"),
                (f"topk(5, sum by (name) (obslab_process_open_fds{S}))", "fds {{name}}"),
            ],
            "short",
            min=0,
        ),
        timeseries(
            "Forks per second",
            "Processes and threads created per second (/proc/stat processes). Bad: hundreds per second "
            "sustained (a crash loop, a script in a hot path).",
            (f"rate(obslab_forks_total{S}[{RI}])", "{{instance}}"),
            "ops",
            min=0,
        ),
    ],
)

cgroups = row(
    "cgroups",
    [
        timeseries(
            "CPU by cgroup",
            "Cores used by each watched cgroup, with its quota (if any) as a dashed line. A cgroup flat at its "
            "quota is capped, however idle the host.",
            [
                (f"rate(obslab_cgroup_cpu_usage_seconds_total{S}[{RI}])", "{{cgroup}}"),
                (f"obslab_cgroup_cpu_limit_cores{S} > 0", "quota {{cgroup}}"),
            ],
            "short",
            min=0,
        ),
        timeseries(
            "CPU throttling by cgroup",
            "Share of scheduler periods in which the cgroup ran out of quota and was throttled "
            "(throttled periods / periods). Bad: above ~10%: its threads sit runnable but not running, "
            "which shows up as latency, not as CPU use.",
            (
                f"rate(obslab_cgroup_cpu_throttled_periods_total{S}[{RI}]) / "
                f"rate(obslab_cgroup_cpu_periods_total{S}[{RI}]) > 0",
                "{{cgroup}}",
            ),
            "percentunit",
            min=0,
            max=1,
            steps=thresholds((None, "green"), (0.1, "red")),
        ),
        timeseries(
            "Throttled time by cgroup",
            "Seconds per second the cgroup's runnable tasks spent throttled, summed over CPUs.",
            (f"rate(obslab_cgroup_cpu_throttled_seconds_total{S}[{RI}])", "{{cgroup}}"),
            "s",
            min=0,
        ),
        timeseries(
            "Memory by cgroup vs limit",
            "Memory charged to each cgroup (page cache included) as a share of its limit. Bad: near 100%: "
            "the kernel reclaims inside the cgroup, then OOM-kills in it.",
            (
                f"obslab_cgroup_memory_usage_bytes{S} / (obslab_cgroup_memory_limit_bytes{S} > 0)",
                "{{cgroup}}",
            ),
            "percentunit",
            min=0,
            max=1,
            steps=thresholds((None, "green"), (0.9, "red")),
        ),
        timeseries(
            "Memory used by cgroup",
            "Memory charged to each watched cgroup, in bytes.",
            (f"obslab_cgroup_memory_usage_bytes{S}", "{{cgroup}}"),
            "bytes",
            min=0,
        ),
        timeseries(
            "cgroup OOM kills and limit hits",
            "OOM kills inside each cgroup and times it hit its memory limit, per rate interval. Bad: any OOM "
            "kill; limit hits mean the cgroup is reclaiming against its limit.",
            [
                (f"increase(obslab_cgroup_memory_oom_kills_total{S}[{RI}]) > 0", "oom {{cgroup}}"),
                (f"increase(obslab_cgroup_memory_limit_hits_total{S}[{RI}]) > 0", "limit hit {{cgroup}}"),
            ],
            "short",
            min=0,
            steps=ANY_BAD,
        ),
    ],
)

dashboard = dashboard(
    uid="obslab-processes",
    title="obslab / Processes and cgroups",
    description="Top processes by CPU, memory and IO; cgroup CPU throttling and memory against limits.",
    anchor="obslab_process_cpu_seconds_total",
    tags=["processes", "cgroups"],
    panels=[*top, *cgroups],
)
