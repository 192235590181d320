"""Fleet: the instructor's view of a classroom of lab VMs (docs/classroom.md).

Reads the central VictoriaMetrics (or any Prometheus-compatible store) that every lab VM's agent remote-writes
to. Every series carries the external label `learner` (and `instance` = the lab VM's name), so each panel is
"one line or row per learner": who is in a lab, which alerts fire on whose VM, and a USE summary per VM.
Built with the shared helpers (panels.py); its variables are `$datasource` and `$learner` instead of
`$job`/`$instance`, since a classroom is sliced by learner.
"""

from grafanalib.core import Dashboard, GridPos, Table, Target, Template, Templating, Time
from obslab.dashboards.grafanalib_ext import SCHEMA_VERSION
from obslab.dashboards.panels import DS, layout, row, stat, thresholds, timeseries

L = 'learner=~"$learner"'
BY = "learner, instance"
COUNT_STEPS = thresholds((None, "blue"))
ALERT_STEPS = thresholds((None, "green"), (1, "red"))


def table(title: str, description: str, expr: str, *, w: int = 12, h: int = 8) -> Table:
    """An instant-query table, one row per label set (panels.py has no table helper)."""
    target = Target(expr=expr, refId="A", datasource=DS, instant=True, format="table", intervalFactor=1)
    return Table(
        title=title,
        description=description,
        dataSource=DS,
        targets=[target],
        gridPos=GridPos(h=h, w=w, x=0, y=0),
        transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
    )


def series(title: str, description: str, expr: str, unit: str, legend: str = "{{learner}}") -> object:
    return timeseries(title, description, (expr, legend), unit, w=8, h=7)


def rate(metric: str, extra: str = "") -> str:
    sel = f"{{{L}{', ' + extra if extra else ''}}}"
    return f"rate({metric}{sel}[$__rate_interval])"


DEMO_5XX = rate("obslab_demo_requests_total", 'code=~"5.."')
DEMO_ALL = rate("obslab_demo_requests_total")
CPU_IDLE = rate("obslab_cpu_seconds_total", 'mode="idle"')

klass = row(
    "Class",
    [
        stat(
            "Learners reporting",
            "Lab VMs whose host exporter the central store hears from. Fewer than the class size: a VM is "
            "down, its agent stopped, or it cannot reach the central VictoriaMetrics.",
            f'count(count by (learner) (up{{job="host", {L}}} == 1)) or vector(0)',
            "short",
            w=6,
            steps=COUNT_STEPS,
        ),
        stat(
            "Labs running",
            "Learners with a lab in progress right now (obslab_lab_active = 1 on their VM).",
            f"count(max by (learner) (obslab_lab_active{{{L}}}) == 1) or vector(0)",
            "short",
            w=6,
            steps=COUNT_STEPS,
        ),
        stat(
            "Alerts firing",
            "Firing alerts across the class, evaluated on each lab VM by its own Prometheus and federated "
            "here. During a lab some should fire: that is the fault the learner must diagnose.",
            f'count(ALERTS{{alertstate="firing", {L}}}) or vector(0)',
            "short",
            w=6,
            steps=ALERT_STEPS,
        ),
        stat(
            "Scrape targets down",
            "Exporters a lab VM's agent cannot scrape. Bad: anything above 0 (an exporter crashed or is not "
            "started: `obslab status` on that VM).",
            f"count(up{{{L}}} == 0) or vector(0)",
            "short",
            w=6,
            steps=ALERT_STEPS,
        ),
    ],
)

learners = row(
    "Per learner",
    [
        table(
            "Lab state by learner",
            "Which lab each learner runs (value 1) or last ran (0). A learner missing here has not started one.",
            f"max by (learner, lab) (obslab_lab_active{{{L}}})",
        ),
        table(
            "Firing alerts by learner",
            "Each row: an alert firing on a learner's VM. The alert name tells which resource the fault hits; "
            "compare it with the learner's answer.",
            f'count by (learner, alertname, severity) (ALERTS{{alertstate="firing", {L}}})',
        ),
        series(
            "Faults injected",
            "1 while a lab's fault is applied on that VM. Bad: a line that stays at 1 after the lab ended (a "
            "revert failed: run `obslab lab reset` there).",
            f"max by (learner, lab, fault) (obslab_lab_fault_active{{{L}}})",
            "short",
            legend="{{learner}} {{fault}}",
        ),
        series(
            "Demo service error ratio",
            "Share of the demo service's requests answered 5xx on each VM: the user-facing symptom of most "
            "labs. Bad: above the 1% SLO.",
            f"sum by (learner) ({DEMO_5XX}) / sum by (learner) ({DEMO_ALL})",
            "percentunit",
        ),
        series(
            "Demo service p90 latency",
            "90th percentile of the demo service's request duration per VM. Bad: a jump from its quiet value, "
            "a lab's fault biting.",
            "histogram_quantile(0.9, sum by (learner, le) "
            f"({rate('obslab_demo_request_duration_seconds_bucket')}))",
            "s",
        ),
    ],
)

use = row(
    "USE summary by instance",
    [
        series(
            "CPU busy",
            "Utilisation: share of CPU time not idle, averaged over the VM's CPUs. Bad: near 100% (CPU-bound).",
            f"1 - avg by ({BY}) ({CPU_IDLE})",
            "percentunit",
        ),
        series(
            "Load per CPU",
            "Saturation: 1-minute load average divided by the CPU count. Bad: above 1, tasks queue for a CPU "
            "(or sit in uninterruptible IO wait, which Linux counts in the load).",
            f"max by ({BY}) (obslab_load1{{{L}}}) "
            f'/ count by ({BY}) (obslab_cpu_seconds_total{{mode="idle", {L}}})',
            "short",
        ),
        series(
            "CPU pressure (some)",
            "PSI: share of time some task waited for a CPU. Bad: sustained above 0.2.",
            f"sum by ({BY}) ({rate('obslab_pressure_cpu_waiting_seconds_total')})",
            "percentunit",
        ),
        series(
            "Memory used",
            "Utilisation: share of memory not available to new work (MemAvailable). High alone is fine; high "
            "with memory pressure or OOM kills is not.",
            f"1 - sum by ({BY}) (obslab_memory_available_bytes{{{L}}}) "
            f"/ sum by ({BY}) (obslab_memory_total_bytes{{{L}}})",
            "percentunit",
        ),
        series(
            "Memory pressure (some)",
            "PSI: share of time some task stalled on memory (reclaim, swap-in, refaults). Bad: above ~0.1.",
            f"sum by ({BY}) ({rate('obslab_pressure_memory_waiting_seconds_total')})",
            "percentunit",
        ),
        series(
            "OOM kills",
            "Errors: processes the kernel's OOM killer ended. Bad: any value above 0.",
            f"sum by ({BY}) (increase(obslab_vmstat_oom_kill_total{{{L}}}[$__rate_interval]))",
            "short",
        ),
        series(
            "Disk busy",
            "Utilisation: share of time the busiest disk had IO in flight. Bad: near 1 on a single-queue "
            "device (the bottleneck).",
            f"max by ({BY}) ({rate('obslab_disk_io_time_seconds_total')})",
            "percentunit",
        ),
        series(
            "IO pressure (some)",
            "Saturation: share of time some task waited on IO. Rises with disk latency and throttled IO.",
            f"sum by ({BY}) ({rate('obslab_pressure_io_waiting_seconds_total')})",
            "percentunit",
        ),
        series(
            "TCP retransmits",
            "Errors: segments TCP sent again per second. Packet loss or a congested link shows here first.",
            f"sum by ({BY}) ({rate('obslab_tcp_retransmitted_segments_total')})",
            "pps",
        ),
    ],
)

learner_var = Template(
    name="learner",
    label="Learner",
    query='label_values(up{job="host"}, learner)',
    dataSource=DS,  # type: ignore[arg-type]
    includeAll=True,
    multi=True,
    allValue=".*",
    default="$__all",
    refresh=2,
    sort=1,
)
learner_var._current = {"selected": True, "text": ["All"], "value": ["$__all"]}

dashboard = Dashboard(
    title="obslab / Fleet",
    uid="obslab-fleet",
    description="Classroom view: every learner's lab VM, its lab state, firing alerts and a USE summary.",
    tags=["obslab", "classroom"],
    timezone="browser",
    refresh="10s",
    time=Time("now-30m", "now"),
    graphTooltip=1,
    schemaVersion=SCHEMA_VERSION,
    editable=True,
    templating=Templating(
        list=[
            Template(
                name="datasource",
                label="Data source",
                query="prometheus",
                type="datasource",
                default="obslab-classroom",
                hide=0,
            ),
            learner_var,
        ]
    ),
    panels=layout([*klass, *learners, *use]),
).auto_panel_ids()
