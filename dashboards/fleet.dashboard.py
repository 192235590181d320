"""Fleet: the instructor's view of a classroom of lab VMs (docs/classroom.md).

Reads the central VictoriaMetrics (or any Prometheus-compatible store) that every lab VM's agent remote-writes
to. Every series carries the external label `learner` (and `instance` = the lab VM's name), so each panel is
"one line or row per learner": who is in a lab, which alerts fire on whose VM, and a USE summary per VM.
"""

from grafanalib.core import (
    Dashboard,
    GridPos,
    RowPanel,
    Stat,
    Table,
    Target,
    Template,
    Templating,
    Threshold,
    Time,
    TimeSeries,
)

DS = {"type": "prometheus", "uid": "${datasource}"}
L = 'learner=~"$learner"'
BY = "learner, instance"


def _t(expr: str, legend: str = "", instant: bool = False, ref: str = "A") -> Target:
    t = Target(expr=expr, legendFormat=legend, refId=ref, datasource=DS)
    if instant:
        t.instant = True
    return t


def stat(title: str, expr: str, desc: str, x: int, y: int, red_at: float = 1) -> Stat:
    return Stat(
        title=title,
        description=desc,
        dataSource=DS,
        targets=[_t(expr, instant=True)],
        gridPos=GridPos(h=4, w=6, x=x, y=y),
        reduceCalc="lastNotNull",
        graphMode="none",
        thresholds=[Threshold("green", 0, 0.0), Threshold("red", 1, float(red_at))],
    )


def table(title: str, expr: str, desc: str, x: int, y: int, w: int = 12) -> Table:
    return Table(
        title=title,
        description=desc,
        dataSource=DS,
        targets=[_t(expr, instant=True)],
        gridPos=GridPos(h=8, w=w, x=x, y=y),
        transformations=[{"id": "labelsToFields", "options": {}}],
    )


def series(
    title: str, expr: str, desc: str, unit: str, x: int, y: int, legend: str = "{{learner}}"
) -> TimeSeries:
    return TimeSeries(
        title=title,
        description=desc,
        dataSource=DS,
        targets=[_t(expr, legend)],
        unit=unit,
        gridPos=GridPos(h=7, w=8, x=x, y=y),
        legendDisplayMode="table",
        legendPlacement="right",
    )


def rate(metric: str, extra: str = "") -> str:
    sel = f"{{{L}{', ' + extra if extra else ''}}}"
    return f"rate({metric}{sel}[$__rate_interval])"


DEMO_5XX = rate("obslab_demo_requests_total", 'code=~"5.."')
DEMO_ALL = rate("obslab_demo_requests_total")
CPU_IDLE = rate("obslab_cpu_seconds_total", 'mode="idle"')

panels = [
    RowPanel(title="Class", gridPos=GridPos(h=1, w=24, x=0, y=0)),
    stat(
        "Learners reporting",
        f'count(count by (learner) (up{{job="host", {L}}} == 1))',
        "Lab VMs whose host exporter the central store hears from. Fewer than the class size: a VM is "
        "down, its agent stopped, or it cannot reach the central VictoriaMetrics.",
        0,
        1,
        red_at=1e9,
    ),
    stat(
        "Labs running",
        f"count(max by (learner) (obslab_lab_active{{{L}}}) == 1) or vector(0)",
        "Learners with a lab in progress right now (obslab_lab_active = 1 on their VM).",
        6,
        1,
        red_at=1e9,
    ),
    stat(
        "Alerts firing",
        f'count(ALERTS{{alertstate="firing", {L}}}) or vector(0)',
        "Firing alerts across the class, evaluated on each lab VM by its own Prometheus and federated here. "
        "During a lab some should fire: that is the fault the learner must diagnose.",
        12,
        1,
    ),
    stat(
        "Scrape targets down",
        f"count(up{{{L}}} == 0) or vector(0)",
        "Exporters a lab VM's agent cannot scrape. Non-zero: an exporter crashed or is not started "
        "(`obslab status` on that VM).",
        18,
        1,
    ),
    RowPanel(title="Per learner", gridPos=GridPos(h=1, w=24, x=0, y=5)),
    table(
        "Lab state by learner",
        f"max by (learner, lab) (obslab_lab_active{{{L}}})",
        "Which lab each learner runs (value 1) or last ran (0). A learner missing here has not started one.",
        0,
        6,
    ),
    table(
        "Firing alerts by learner",
        f'count by (learner, alertname, severity) (ALERTS{{alertstate="firing", {L}}})',
        "Each row: an alert firing on a learner's VM. The alert name tells which resource the fault hits; "
        "compare with the learner's answer.",
        12,
        6,
    ),
    series(
        "Faults injected",
        f"max by (learner, lab, fault) (obslab_lab_fault_active{{{L}}})",
        "1 while a lab's fault is applied on that VM. Lines that stay at 1 after a lab ended mean a revert "
        "failed: run `obslab lab reset` there.",
        "none",
        0,
        14,
        legend="{{learner}} {{fault}}",
    ),
    series(
        "Demo service error ratio",
        f"sum by (learner) ({DEMO_5XX}) / sum by (learner) ({DEMO_ALL})",
        "Share of the demo service's requests answered 5xx on each VM: the user-facing symptom of most labs.",
        "percentunit",
        8,
        14,
    ),
    series(
        "Demo service p90 latency",
        "histogram_quantile(0.9, sum by (learner, le) "
        f"({rate('obslab_demo_request_duration_seconds_bucket')}))",
        "90th percentile of the demo service's request duration per VM. A jump is a lab's fault biting.",
        "s",
        16,
        14,
    ),
    RowPanel(title="USE summary by instance", gridPos=GridPos(h=1, w=24, x=0, y=21)),
    series(
        "CPU busy",
        f"1 - avg by ({BY}) ({CPU_IDLE})",
        "Utilisation: share of CPU time not idle, averaged over the VM's CPUs. Near 100% means CPU-bound.",
        "percentunit",
        0,
        22,
    ),
    series(
        "Load per CPU",
        f"max by ({BY}) (obslab_load1{{{L}}}) "
        f'/ count by ({BY}) (obslab_cpu_seconds_total{{mode="idle", {L}}})',
        "Saturation: 1-minute load average divided by the CPU count. Above 1, tasks queue for a CPU (or sit "
        "in uninterruptible IO wait, which Linux counts in the load).",
        "none",
        8,
        22,
    ),
    series(
        "CPU pressure (some)",
        f"sum by ({BY}) ({rate('obslab_pressure_cpu_waiting_seconds_total')})",
        "PSI: share of time some task waited for a CPU. Sustained above 0.2, work is delayed by CPU contention.",
        "percentunit",
        16,
        22,
    ),
    series(
        "Memory used",
        f"1 - sum by ({BY}) (obslab_memory_available_bytes{{{L}}}) "
        f"/ sum by ({BY}) (obslab_memory_total_bytes{{{L}}})",
        "Utilisation: share of memory not available to new work (MemAvailable). High alone is fine; high with "
        "memory pressure or OOM kills is not.",
        "percentunit",
        0,
        29,
    ),
    series(
        "Memory pressure (some)",
        f"sum by ({BY}) ({rate('obslab_pressure_memory_waiting_seconds_total')})",
        "PSI: share of time some task stalled on memory (reclaim, swap-in, refaults). Above ~0.1 hurts latency.",
        "percentunit",
        8,
        29,
    ),
    series(
        "OOM kills",
        f"sum by ({BY}) (increase(obslab_vmstat_oom_kill_total{{{L}}}[$__rate_interval]))",
        "Errors: processes the kernel's OOM killer ended. Any non-zero value on a VM is worth a look.",
        "none",
        16,
        29,
    ),
    series(
        "Disk busy",
        f"max by ({BY}) ({rate('obslab_disk_io_time_seconds_total')})",
        "Utilisation: share of time the busiest disk had IO in flight. Near 1, the device is the bottleneck "
        "(for a single-queue device) or at least very busy.",
        "percentunit",
        0,
        36,
    ),
    series(
        "IO pressure (some)",
        f"sum by ({BY}) ({rate('obslab_pressure_io_waiting_seconds_total')})",
        "Saturation: share of time some task waited on IO. Rises with disk latency and throttled IO.",
        "percentunit",
        8,
        36,
    ),
    series(
        "TCP retransmits",
        f"sum by ({BY}) ({rate('obslab_tcp_retransmitted_segments_total')})",
        "Errors: segments TCP had to send again per second. Packet loss or a congested link shows here first.",
        "pps",
        16,
        36,
    ),
]

dashboard = Dashboard(
    title="obslab / Fleet",
    uid="obslab-fleet",
    description="Classroom view: every learner's lab VM, its lab state, firing alerts and a USE summary.",
    tags=["obslab", "classroom"],
    timezone="browser",
    refresh="10s",
    time=Time("now-30m", "now"),
    templating=Templating(
        list=[
            Template(
                name="datasource",
                label="Data source",
                query="prometheus",
                type="datasource",
                default="obslab-classroom",
            ),
            Template(
                name="learner",
                label="Learner",
                query='label_values(up{job="host"}, learner)',
                dataSource=DS,  # type: ignore[arg-type]
                includeAll=True,
                multi=True,
                allValue=".*",
                default="$__all",
                refresh=2,
            ),
        ]
    ),
    panels=panels,
).auto_panel_ids()
