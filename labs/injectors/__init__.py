"""Fault injectors: one module per fault kind, registered with ``@register``.

An injector validates its params (``validate`` raises InjectorError naming the param), ``apply``s the fault
writing every change to its fault's own ledger BEFORE making it, and ``revert``s by replaying that ledger, so
revert is idempotent and a crash leaves a ledger `obslab lab reset` can replay. Every fault is bounded: culprit
processes exit by themselves at the lab's deadline, and sizes are capped by each param's maximum.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from obslab.labs import sandbox
from obslab.labs.demo import DemoInfo
from obslab.labs.ledger import Ledger

from obslab import procs


class InjectorError(ValueError):
    """A bad parameter (``param`` names it) or a fault that cannot be applied here."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Param:
    kind: type[Any]
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    help: str = ""


@dataclass
class FaultContext:
    """What an injector works with: the lab, its fault's ledger, the demo's sandbox and the deadline."""

    lab_id: str
    fault: str
    ledger: Ledger
    demo: DemoInfo
    until: float  # epoch seconds: every culprit is gone by then
    files_dir: Path  # lab files live here (removed by revert and by reset)
    culprits: list[procs.Proc] = field(default_factory=list)

    def cgroup(self, rel: str) -> sandbox.Cgroup:
        return sandbox.cgroup(rel, mode=self.demo.cgroup_mode)

    def make_cgroup(self, rel: str) -> sandbox.Cgroup:
        self.ledger.record("cgroup", rel=rel, mode=self.demo.cgroup_mode)
        cg = self.cgroup(rel)
        cg.create()
        return cg

    def set_knob(self, cg: sandbox.Cgroup, knob: str, value: str) -> None:
        """Write a cgroup knob, ledgering its old value first."""
        old = cg.read(knob)
        self.ledger.record("cgroup_write", rel=cg.rel, mode=self.demo.cgroup_mode, knob=knob, old=old)
        cg.write(knob, value)

    def spawn_culprit(
        self, name: str, kind: str, cgroup_rel: str, display: list[str], **opts: Any
    ) -> procs.Proc:
        """Start a culprit workload named ``name`` (argv[0] and comm) inside ``cgroup_rel``."""
        from obslab.labs import culprit

        cg = self.cgroup(cgroup_rel)
        args = ["--kind", kind, "--name", name, "--until", str(self.until)]
        for k, v in opts.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CULPRIT_ARGS": json.dumps(args), "LANG": "C.UTF-8"}
        log = self.files_dir / f"{name}.log"
        self.files_dir.mkdir(parents=True, exist_ok=True)

        def pre() -> None:
            cg.add(os.getpid())

        with open(log, "ab") as out:
            child = subprocess.Popen(
                [name, "-I", "-", *display],
                # the base interpreter, not the venv: the culprit is stdlib-only
                executable=os.path.realpath(sys.executable),
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd="/",
                preexec_fn=pre,
            )
        proc = procs.Proc(name, child.pid, procs.proc_starttime(child.pid) or -1, [name, *display], str(log))
        self.ledger.record("proc", **proc.__dict__)
        assert child.stdin is not None
        child.stdin.write(Path(culprit.__file__).read_bytes())
        child.stdin.close()
        procs._children[child.pid] = child  # reaped by procs.stop
        self.culprits.append(proc)
        return proc


class Injector:
    """Base class: subclasses set ``name``, ``params`` and implement ``apply``."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}

    @classmethod
    def validate(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Params with defaults filled in; InjectorError(param=...) on an unknown, mistyped or out-of-range one."""
        if not isinstance(given, dict):
            raise InjectorError("params must be a mapping")
        out = {}
        for key in given:
            if key not in cls.params:
                known = ", ".join(sorted(cls.params)) or "none"
                raise InjectorError(f"unknown parameter for {cls.name} (known: {known})", key)
        for key, spec in cls.params.items():
            value: Any = given.get(key, spec.default)
            if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, spec.kind) or (isinstance(value, bool) and spec.kind is not bool):
                raise InjectorError(f"expected {spec.kind.__name__}, got {type(value).__name__}", key)
            if spec.minimum is not None and value < spec.minimum:
                raise InjectorError(f"{value!r} is below the minimum {spec.minimum}", key)
            if spec.maximum is not None and value > spec.maximum:
                raise InjectorError(
                    f"{value!r} is above the maximum {spec.maximum} (faults are bounded)", key
                )
            if spec.choices and value not in spec.choices:
                raise InjectorError(f"{value!r} is not one of {', '.join(map(str, spec.choices))}", key)
            out[key] = value
        return out

    def apply(self, ctx: FaultContext, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def revert(self, ctx: FaultContext) -> list[str]:
        """Undo everything ``apply`` did (its ledger, newest first). Safe to call twice."""
        return ctx.ledger.replay()


INJECTORS: dict[str, type[Injector]] = {}


def register(cls: type[Injector]) -> type[Injector]:
    INJECTORS[cls.name] = cls
    return cls


def load_all() -> dict[str, type[Injector]]:
    """Import every module of this package (each registers its injector)."""
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    return INJECTORS


def culprit_cgroup(ctx: FaultContext, shared: bool) -> str:
    """``obslab/<iid>/app/<fault>`` (shares the service's limits) or ``obslab/<iid>/<fault>`` (its own)."""
    base = ctx.demo.app_cgroup if shared else ctx.demo.app_cgroup.rsplit("/", 1)[0]
    return f"{base}/{ctx.fault}"
