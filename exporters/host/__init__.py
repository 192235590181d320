"""Host collectors: one module per collector, reading /proc and /sys.

Importing this package imports every collector module in it (each registers itself with ``@register``);
modules whose name starts with ``_`` are shared helpers, ``cli`` is the command. No hand-kept list.
"""

from __future__ import annotations

import importlib
import pkgutil

_NOT_COLLECTORS = {"cli"}


def load_builtin() -> list[str]:
    """Import every built-in collector module; returns their module names."""
    names = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _NOT_COLLECTORS:
            continue
        importlib.import_module(f"{__name__}.{info.name}")
        names.append(info.name)
    return names


load_builtin()
