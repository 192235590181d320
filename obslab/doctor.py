"""`obslab doctor`: what this machine can do, and for each thing it lacks, the command that fixes it.

Checks register themselves with ``@check(name, essential=...)`` and return one ``Finding`` or a list of
them. Other areas contribute checks from a module named ``doctor_checks`` inside their package
(``obslab.labs.doctor_checks``, say): doctor imports every such module it finds, so no list is edited here.

Essential checks (exit 3 when one is missing) are what `make up` and the labs cannot work without:
privileges (root), /proc and /sys readable, a cgroup hierarchy with the cpu and memory controllers, and the
prometheus and promtool binaries. Everything else is reported with what degrades and how to fix it:
eBPF (the eBPF exporter reports its probes as not attached), kernel headers, tracefs and tracepoints,
kprobes (not used: obslab attaches to tracepoints only), netem (network labs fall back to tbf and
nftables), PSI, Alertmanager, node_exporter, Grafana and VictoriaMetrics.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

from obslab.clickutil import emit_json, json_option
from obslab.errors import EnvironmentMissing
from obslab.paths import find_binary


@dataclass
class Finding:
    """One line of the report."""

    check: str
    ok: bool
    detail: str
    fix: str | None = None
    essential: bool = False
    area: str = "host"

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "missing" if self.essential else "degraded"


@dataclass
class CheckInfo:
    name: str
    func: Callable[[], Finding | list[Finding]]
    essential: bool
    area: str
    help: str = ""


CHECKS: dict[str, CheckInfo] = {}


def check(
    name: str, *, essential: bool = False, area: str = "host"
) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Register a doctor check: a function returning a ``Finding`` or a list of them."""

    def deco(func: Callable[[], object]) -> Callable[[], object]:
        doc = (func.__doc__ or name).strip().splitlines()[0]
        CHECKS[name] = CheckInfo(name, func, essential, area, doc)  # type: ignore[arg-type]
        return func

    return deco


def _found(name: str, ok: bool, detail: str, fix: str | None = None) -> Finding:
    info = CHECKS.get(name)
    return Finding(
        name,
        ok,
        detail,
        None if ok else fix,
        info.essential if info else False,
        info.area if info else "host",
    )


def _run(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


# --- privileges, kernel interfaces ------------------------------------------------------------------------

#: include/uapi/linux/capability.h
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


def parse_cap_eff(status_text: str) -> int:
    """The effective capability mask from /proc/self/status."""
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)$", status_text, re.M)
    return int(m.group(1), 16) if m else 0


@check("privileges", essential=True)
def check_privileges() -> Finding:
    """root, or the capabilities the labs and eBPF need (CAP_SYS_ADMIN, or CAP_BPF + CAP_PERFMON)."""
    if os.geteuid() == 0:
        return _found("privileges", True, "running as root")
    caps = parse_cap_eff(Path("/proc/self/status").read_text())
    has = lambda c: bool(caps >> c & 1)  # noqa: E731
    if has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON)):
        return _found("privileges", True, "not root, but has CAP_SYS_ADMIN or CAP_BPF+CAP_PERFMON")
    return _found(
        "privileges",
        False,
        "not root: labs create cgroups and network namespaces, the eBPF exporter loads programs",
        "sudo obslab doctor   (run obslab as root: sudo -i, then make up)",
    )


@check("procfs", essential=True)
def check_procfs() -> Finding:
    """/proc and /sys are mounted and readable (every host collector reads them)."""
    missing = [p for p in ("/proc/stat", "/proc/meminfo", "/sys/block") if not os.access(p, os.R_OK)]
    if missing:
        return _found(
            "procfs",
            False,
            f"cannot read {', '.join(missing)}",
            "mount -t proc proc /proc; mount -t sysfs sysfs /sys",
        )
    return _found("procfs", True, "/proc and /sys readable")


def cgroup_mode(root: str = "/sys/fs/cgroup") -> tuple[str, list[str]]:
    """("v1" | "v2" | "hybrid" | "none", controllers usable)."""
    try:  # the labs area owns the authoritative version; use it when present
        from obslab.labs.sandbox import cgroup_controllers
        from obslab.labs.sandbox import cgroup_mode as labs_mode

        return labs_mode(Path(root)), sorted(cgroup_controllers(Path(root)))
    except ImportError:
        pass
    if os.path.exists(f"{root}/cgroup.controllers"):
        return "v2", sorted(Path(f"{root}/cgroup.controllers").read_text().split())
    v1 = sorted(
        c
        for c in ("cpu", "cpuacct", "memory", "blkio", "io", "pids", "cpuset")
        if os.path.isdir(f"{root}/{c}")
    )
    if not v1:
        return "none", []
    return ("hybrid" if os.path.exists(f"{root}/unified/cgroup.controllers") else "v1"), v1


@check("cgroups", essential=True)
def check_cgroups() -> Finding:
    """cgroup v1, v2 or hybrid, and whether the cpu and memory controllers (the labs' sandboxes) exist."""
    mode, controllers = cgroup_mode()
    if mode == "none":
        return _found(
            "cgroups",
            False,
            "no cgroup filesystem under /sys/fs/cgroup",
            "mount -t cgroup2 none /sys/fs/cgroup",
        )
    need = {"cpu", "memory"} - set(controllers)
    detail = f"{mode}; controllers: {', '.join(controllers) or 'none'}"
    if need:
        return _found(
            "cgroups",
            False,
            f"{detail}; missing {', '.join(sorted(need))}",
            "echo '+cpu +memory' > /sys/fs/cgroup/cgroup.subtree_control   (v2), or boot with cgroup_enable=memory",
        )
    return _found("cgroups", True, detail)


@check("psi")
def check_psi() -> Finding:
    """Pressure stall information (/proc/pressure, Linux 4.20+ with CONFIG_PSI)."""
    try:
        Path("/proc/pressure/cpu").read_text()
    except OSError as e:
        return _found(
            "psi",
            False,
            f"/proc/pressure unavailable ({e.strerror}): the PSI panels stay empty",
            "add psi=1 to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub; update-grub; reboot)",
        )
    return _found("psi", True, "/proc/pressure/{cpu,memory,io} readable")


# --- eBPF ---------------------------------------------------------------------------------------------------

_BPF_SMOKE = """
import sys
from bcc import BPF
prog = 'TRACEPOINT_PROBE(sched, sched_process_exec) { return 0; }'
b = BPF(text=prog, cflags=['-Wno-ignored-attributes'])
b.cleanup()
print('attached')
"""


@check("bpf")
def check_bpf() -> Finding:
    """bcc imports and a tiny tracepoint program compiles, loads and attaches."""
    try:
        result = _run([sys.executable, "-c", _BPF_SMOKE], timeout=120)
    except subprocess.TimeoutExpired:
        return _found("bpf", False, "compiling a tiny BPF program took over 120 s", "make setup")
    if "attached" in result.stdout:
        return _found("bpf", True, "bcc loads and attaches a tracepoint program")
    err = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
    if "No module named 'bcc'" in result.stderr:
        return _found(
            "bpf",
            False,
            "bcc is not importable: the eBPF exporter cannot run",
            "make setup   (apt-get install python3-bpfcc)",
        )
    return _found(
        "bpf",
        False,
        f"BPF program did not load: {err[:200]}",
        "run as root on a kernel with CONFIG_BPF_SYSCALL and CONFIG_BPF_EVENTS; make setup (kernel headers)",
    )


def classify_headers(release: str, build_target: str | None) -> tuple[str, str]:
    """("exact" | "nearest" | "none", version found) from the /lib/modules/RELEASE/build link target."""
    if not build_target or not os.path.isdir(build_target):
        return "none", ""
    name = os.path.basename(os.path.normpath(build_target))
    version = name.removeprefix("linux-headers-")
    if version == release or release in name:
        return "exact", version
    return "nearest", version


@check("kernel-headers")
def check_headers() -> Finding:
    """Kernel headers for bcc: exact, nearest (tracepoint args only, which obslab keeps to) or none."""
    release = os.uname().release
    link = f"/lib/modules/{release}/build"
    target = os.path.realpath(link) if os.path.lexists(link) else None
    kind, version = classify_headers(release, target)
    if kind == "exact":
        return _found("kernel-headers", True, f"exact headers for {release}")
    if kind == "nearest":
        return _found(
            "kernel-headers",
            True,
            f"nearest headers ({version}) linked for {release}: fine, obslab probes read only tracepoint arguments",
        )
    return _found(
        "kernel-headers",
        False,
        f"no headers at {link}: bcc cannot compile the probes",
        f"make setup   (apt-get install linux-headers-{release}, or the nearest version, linked as {link})",
    )


def tracefs_root() -> str | None:
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.isdir(f"{root}/events"):
            return root
    return None


@check("tracefs")
def check_tracefs() -> Finding:
    """tracefs is mounted (tracepoints are listed under /sys/kernel/tracing/events)."""
    root = tracefs_root()
    if root:
        return _found("tracefs", True, f"mounted at {root}")
    return _found("tracefs", False, "tracefs is not mounted", "mount -t tracefs nodev /sys/kernel/tracing")


@check("tracepoints")
def check_tracepoints() -> list[Finding]:
    """Each eBPF probe's tracepoints exist on this kernel."""
    try:
        from obslab.exporters.ebpf.probes import PROBE_TRACEPOINTS
    except ImportError as e:
        return [_found("tracepoints", False, f"eBPF probes not available ({e})", "make setup")]
    root = tracefs_root()
    if root is None:
        return [
            _found(
                "tracepoints",
                False,
                "tracefs not mounted: cannot list tracepoints",
                "mount -t tracefs nodev /sys/kernel/tracing",
            )
        ]
    out = []
    for probe, tracepoints in sorted(PROBE_TRACEPOINTS.items()):
        missing = [tp for tp in tracepoints if not os.path.isdir(f"{root}/events/{tp.replace(':', '/')}")]
        name = f"tracepoints:{probe}"
        if missing:
            out.append(
                Finding(
                    name,
                    False,
                    f"missing {', '.join(missing)}: probe {probe} will not attach",
                    "a newer kernel (or one with the tracepoint's subsystem enabled)",
                    area="ebpf",
                )
            )
        else:
            out.append(Finding(name, True, ", ".join(tracepoints), area="ebpf"))
    return out


def kernel_config(option: str) -> str | None:
    """The value of a kernel build option (``y``, ``m``...) from /proc/config.gz or /boot/config-RELEASE."""
    import gzip

    text = None
    try:
        text = gzip.decompress(Path("/proc/config.gz").read_bytes()).decode()
    except OSError:
        with contextlib.suppress(OSError):
            text = Path(f"/boot/config-{os.uname().release}").read_text()
    if text is None:
        return None
    m = re.search(rf"^{re.escape(option)}=(\S+)$", text, re.M)
    return m.group(1) if m else "n"


@check("kprobes")
def check_kprobes() -> Finding:
    """kprobes (not needed: obslab attaches to tracepoints only; reported for completeness)."""
    root = tracefs_root() or "/sys/kernel/tracing"
    if os.path.exists(f"{root}/kprobe_events"):
        return _found("kprobes", True, "kprobe_events present")
    config = kernel_config("CONFIG_KPROBE_EVENTS")
    why = "kernel config unknown" if config is None else f"CONFIG_KPROBE_EVENTS={config}"
    return _found(
        "kprobes",
        False,
        f"no kprobe_events ({why}): not needed, obslab uses tracepoints only",
        "nothing to do; for other tools, a kernel with CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y",
    )


# --- network: netem and its fallbacks --------------------------------------------------------------------------


def _qdisc_works(kind: list[str]) -> tuple[bool, str]:
    """Try a qdisc on the loopback of a throwaway namespace (obslabtest-doctor-PID), then delete the namespace:
    nothing outside it is touched, and no dummy/veth module is needed."""
    ip, tc = find_binary("ip"), find_binary("tc")
    if not ip or not tc:
        return False, "ip/tc not installed (apt-get install iproute2)"
    ns = f"obslabtest-doctor-{os.getpid()}"
    try:
        add = _run([ip, "netns", "add", ns])
        if add.returncode != 0:
            return False, add.stderr.strip()
        r = _run([ip, "-n", ns, "link", "set", "lo", "up"])
        if r.returncode != 0:
            return False, r.stderr.strip()
        r = _run([tc, "-n", ns, "qdisc", "add", "dev", "lo", "root", *kind])
        return r.returncode == 0, r.stderr.strip()
    finally:
        _run([ip, "netns", "delete", ns])


@check("netem")
def check_netem() -> Finding:
    """tc netem (delay/loss); without it the network labs use tbf and nftables drops instead."""
    if os.geteuid() != 0:
        return _found("netem", False, "needs root to test", "sudo obslab doctor")
    ok, err = _qdisc_works(["netem", "delay", "1ms"])
    if ok:
        return _found("netem", True, "netem qdisc works")
    tbf_ok, _ = _qdisc_works(["tbf", "rate", "1mbit", "burst", "32kbit", "latency", "50ms"])
    fallback = (
        "tbf works: network labs use tbf and nftables instead" if tbf_ok else "tbf does not work either"
    )
    return _found(
        "netem",
        False,
        f"netem unavailable ({err or 'unknown error'}); {fallback}",
        "apt-get install linux-modules-extra-$(uname -r)   (Ubuntu), or a kernel with CONFIG_NET_SCH_NETEM",
    )


# --- binaries -----------------------------------------------------------------------------------------------------


@dataclass
class Binary:
    check: str
    names: list[str]
    essential: bool
    fix: str
    why: str
    extra: list[str] = field(default_factory=list)


BINARIES = [
    Binary(
        "prometheus", ["prometheus"], True, "apt-get install prometheus", "the stack's time-series database"
    ),
    Binary("promtool", ["promtool"], True, "apt-get install prometheus", "rule and metric checks"),
    Binary(
        "alertmanager",
        ["prometheus-alertmanager", "alertmanager"],
        False,
        "apt-get install prometheus-alertmanager",
        "alert routing",
    ),
    Binary(
        "node_exporter",
        ["prometheus-node-exporter", "node_exporter"],
        False,
        "apt-get install prometheus-node-exporter",
        "cross-checks and benchmarks",
    ),
    Binary(
        "grafana-server",
        ["grafana-server", "grafana"],
        False,
        "add Grafana's APT repository (https://apt.grafana.com) then apt-get install grafana",
        "dashboards (optional: the console renders the lab panels itself)",
    ),
    Binary(
        "victoria-metrics",
        ["victoria-metrics", "victoria-metrics-prod"],
        False,
        "apt-get install victoria-metrics",
        "long-term storage (optional)",
    ),
]


def _register_binary(b: Binary) -> None:
    def run() -> Finding:
        for name in b.names:
            path = find_binary(name)
            if path:
                return _found(b.check, True, path)
        return _found(b.check, False, f"{b.names[0]} not found: {b.why}", b.fix)

    run.__doc__ = f"the {b.check} binary ({b.why})"
    check(b.check, essential=b.essential)(run)


for _b in BINARIES:
    _register_binary(_b)


# --- contributions from other areas ------------------------------------------------------------------------


def load_contributed_checks() -> list[str]:
    """Import every ``doctor_checks`` module under obslab's packages (they call ``@check``)."""
    loaded = []
    for root in ("obslab.exporters", "obslab.labs", "obslab.dashboards"):
        try:
            pkg = importlib.import_module(root)
        except ImportError:
            continue
        for info in pkgutil.walk_packages(pkg.__path__, prefix=root + ".", onerror=lambda _name: None):
            if info.name.endswith(".doctor_checks"):
                try:
                    importlib.import_module(info.name)
                    loaded.append(info.name)
                except Exception as e:  # a broken contribution is a finding, not a crash
                    failed = info.name

                    def report(e: Exception = e, failed: str = failed) -> Finding:
                        return Finding(failed, False, f"check module failed to import: {e}", "report a bug")

                    check(failed)(report)
    return loaded


def run_checks(only: list[str] | None = None) -> list[Finding]:
    load_contributed_checks()
    findings: list[Finding] = []
    for name, info in CHECKS.items():
        if only and name not in only:
            continue
        try:
            result = info.func()
        except Exception as e:  # a check that crashes says so instead of hiding the others
            result = Finding(
                name,
                False,
                f"check crashed: {type(e).__name__}: {e}",
                "report a bug",
                info.essential,
                info.area,
            )
        findings.extend(result if isinstance(result, list) else [result])
    return findings


@click.command("doctor")
@json_option
@click.option("--check", "only", multiple=True, metavar="NAME", help="Run only this check (repeatable).")
def doctor(as_json: bool, only: tuple[str, ...]) -> None:
    """Check what this machine can do: privileges, BPF, kernel headers, tracepoints, kprobes, netem,
    cgroups, PSI and the Prometheus/Grafana binaries. Each missing thing comes with the command that fixes it.

    Exit 0 when every essential check passes (privileges, procfs, cgroups, prometheus, promtool), 3 when
    one does not. Others are reported as "degraded": obslab runs, with that part reduced.
    """
    load_contributed_checks()
    unknown = [n for n in only if n not in CHECKS]
    if unknown:
        raise click.UsageError(f"unknown check {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    findings = run_checks(list(only) or None)
    if as_json:
        emit_json([{**asdict(f), "status": f.status} for f in findings])
    else:
        width = max(len(f.check) for f in findings)
        marks = {"ok": "ok ", "degraded": "-- ", "missing": "!! "}
        for f in findings:
            line = f"{marks[f.status]}{f.check:<{width}}  {f.detail}"
            if f.fix:
                line += f"\n{'':<{width + 5}}fix: {f.fix}"
            click.echo(line)
    missing = [f.check for f in findings if f.status == "missing"]
    if missing:
        raise EnvironmentMissing(f"essential checks missing: {', '.join(missing)}")
