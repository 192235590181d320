"""processes: how many processes are in each scheduler state (running, sleeping, blocked in D, zombie...),
threads in total, and the PID / thread limits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from obslab.exporters.host._common import HostCollector, read_text
from obslab.exporters.host._procscan import PidStat, scan
from obslab.exporters.registry import register
from prometheus_client.core import GaugeMetricFamily, Metric

#: /proc/PID/stat state letter → label (fs/proc/array.c task_state_array). Every state is exported, even at 0.
STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "blocked",  # uninterruptible sleep, usually waiting for I/O: counts in the load average
    "Z": "zombie",
    "T": "stopped",
    "t": "tracing_stop",
    "X": "dead",
    "I": "idle",  # idle kernel threads (Linux 4.14+), not counted in the load average
    "P": "parked",
}


def count_states(procs: Iterable[PidStat]) -> dict[str, int]:
    counts = Counter(p.state for p in procs)
    return {label: counts.get(letter, 0) for letter, label in STATES.items()}


@register
class ProcessesCollector(HostCollector):
    """Processes by state (running, sleeping, blocked/D, zombie, stopped...), threads, PID limits."""

    name = "processes"
    default_enabled = True

    def collect(self) -> Iterator[Metric]:
        procs = scan(self.paths.procfs)
        by_state = GaugeMetricFamily(
            "obslab_processes", "Processes in each scheduler state.", labels=["state"]
        )
        for label, n in count_states(procs).items():
            by_state.add_metric([label], n)
        yield by_state
        yield GaugeMetricFamily(
            "obslab_processes_threads", "Threads of all processes.", value=sum(p.threads for p in procs)
        )
        for file, metric, doc in (
            ("pid_max", "obslab_processes_pid_max", "Highest PID plus one (kernel.pid_max)."),
            (
                "threads-max",
                "obslab_processes_threads_max",
                "Most threads the system allows (kernel.threads-max).",
            ),
        ):
            try:
                yield GaugeMetricFamily(metric, doc, value=int(read_text(self.proc("sys", "kernel", file))))
            except (OSError, ValueError):
                continue
