"""The per-process collector's bookkeeping on a copy of the fixture tree (processes exit, exec, change):
counters never go backwards, the name cap holds, and the kept /proc/PID/stat descriptors read fresh data."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from obslab.exporters.host import process as process_mod
from obslab.exporters.host._procscan import StatReader
from obslab.exporters.registry import Paths

from .hosttools import FIXTURES


def _values(collector: process_mod.ProcessCollector) -> dict[tuple[str, str], float]:
    out = {}
    for family in collector.collect():
        for s in family.samples:
            out[s.name, s.labels["name"]] = s.value
    return out


def _set_stat(path: Path, comm: str | None = None, utime: int | None = None) -> None:
    text = path.read_text()
    head, _, rest = text.rpartition(")")
    fields = rest.split(" ")
    if utime is not None:
        fields[12] = str(utime)  # rest starts with "" before state: field 14 (utime) is index 12
    if comm is not None:
        head = head[: head.index("(") + 1] + comm
    path.write_text(head + ")" + " ".join(fields))


@pytest.fixture
def proc_tree(tmp_path: Path) -> Path:
    dst = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", dst)
    return dst


def _user_pids(proc: Path, comm: str) -> list[Path]:
    return [p for p in proc.iterdir() if p.name.isdigit() and f"({comm})" in (p / "stat").read_text()]


def test_counters_survive_exit_and_exec(proc_tree: Path) -> None:
    c = process_mod.ProcessCollector(Paths(procfs=str(proc_tree)))
    first = _values(c)
    bash = _user_pids(proc_tree, "bash")
    assert len(bash) >= 2
    cpu_before = first["obslab_process_cpu_seconds_total", "bash"]
    # One bash exits; another burns 1 s (100 ticks) of user CPU.
    survivor = bash[1]
    utime = int((survivor / "stat").read_text().rpartition(")")[2].split()[11])
    shutil.rmtree(bash[0])
    _set_stat(survivor / "stat", utime=utime + 100)
    second = _values(c)
    assert second["obslab_process_instances", "bash"] == len(bash) - 1
    assert second["obslab_process_cpu_seconds_total", "bash"] == pytest.approx(cpu_before + 1.0)
    # The survivor execs into another program: its old name keeps its count, the new name starts a series.
    _set_stat(survivor / "stat", comm="python3")
    third = _values(c)
    assert (
        third["obslab_process_cpu_seconds_total", "bash"]
        >= second["obslab_process_cpu_seconds_total", "bash"]
    )
    assert ("obslab_process_cpu_seconds_total", "python3") in third


def test_name_cap_and_other(proc_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process_mod, "MAX_NAMES", 2)
    c = process_mod.ProcessCollector(Paths(procfs=str(proc_tree)))
    v = _values(c)
    names = {n for (metric, n) in v if metric == "obslab_process_instances"}
    assert len(names) == 3 and "other" in names  # two names + other
    total = sum(val for (metric, _), val in v.items() if metric == "obslab_process_instances")
    assert total == len([p for p in proc_tree.iterdir() if p.name.isdigit()])


def test_kept_descriptors_read_fresh_values() -> None:
    busy = subprocess.Popen(
        [sys.executable, "-c", "import time\nend=time.time()+5\nwhile time.time()<end: pass"]
    )
    try:
        reader = StatReader("/proc")
        ticks = []
        for _ in range(3):
            stats = {p.pid: p for p in reader.read_all()}
            ticks.append(stats[busy.pid].utime + stats[busy.pid].stime)
            time.sleep(0.5)
        assert ticks[0] < ticks[1] < ticks[2], ticks
        assert str(busy.pid) in reader.fds  # the descriptor was kept and reused
    finally:
        busy.kill()
        busy.wait()
    stats = {p.pid for p in reader.read_all()}
    assert busy.pid not in stats and str(busy.pid) not in reader.fds  # closed once the process is gone
    reader.close()


def test_fd_count_fast_path_matches_listdir() -> None:
    if not process_mod._fd_count_by_size("/proc"):
        pytest.skip("kernel older than 6.2: /proc/PID/fd st_size is not the fd count here")
    import os

    assert abs(os.stat("/proc/self/fd").st_size - (len(os.listdir("/proc/self/fd")) - 1)) <= 1
    assert not process_mod._fd_count_by_size(str(FIXTURES / "proc"))  # a plain tree uses listdir
    assert re.match(r"\d+\.\d+", os.uname().release)
