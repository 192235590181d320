"""Defaults every component agrees on: ports and listen addresses.

Ports sit outside the crowded 9090-10100 range. Each can be moved with an environment variable
``OBSLAB_<NAME>_PORT`` (e.g. ``OBSLAB_PROMETHEUS_PORT=29090``); tests use that to run beside a live stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from obslab.errors import UsageError

DEFAULT_PORTS: dict[str, int] = {
    "host_exporter": 19100,
    "ebpf_exporter": 19101,
    "prometheus": 19090,
    "alertmanager": 19093,
    "alertmanager_cluster": 19094,
    "demo": 19200,
    "console": 19300,
    "grafana": 19400,
}

LOOPBACK = "127.0.0.1"


def port(name: str) -> int:
    """The port for component ``name``, honouring ``OBSLAB_<NAME>_PORT``."""
    env = f"OBSLAB_{name.upper()}_PORT"
    raw = os.environ.get(env)
    if raw is None:
        return DEFAULT_PORTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{env}={raw!r} is not a port number") from None
    if not 0 < value < 65536:
        raise UsageError(f"{env}={raw!r} is outside 1-65535")
    return value


def default_listen(name: str) -> str:
    return f"{LOOPBACK}:{port(name)}"


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")


def parse_listen(text: str) -> Listen:
    """Parse ``HOST:PORT``, ``:PORT`` or ``[V6]:PORT``; a bad value is a usage error (exit 2)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:19100")
    host = host.strip("[]") or "0.0.0.0"
    try:
        value = int(port_text)
    except ValueError:
        raise UsageError(f"--listen {text!r}: {port_text!r} is not a port number") from None
    if not 0 < value < 65536:
        raise UsageError(f"--listen {text!r}: port must be 1-65535")
    return Listen(host, value)
