"""`python -m bench [NAME ...]`: run every ``bench/bench_*.py`` module's ``main()``, or only those named
(``host`` runs bench_host.py). Each module prints its own side-by-side numbers."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def available() -> list[str]:
    here = str(Path(__file__).resolve().parent)
    return sorted(
        m.name.removeprefix("bench_") for m in pkgutil.iter_modules([here]) if m.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown bench {', '.join(unknown)}; known: {', '.join(available())}", file=sys.stderr)
        return 2
    for name in names:
        print(f"=== bench {name} ===", flush=True)
        start = time.monotonic()
        module = importlib.import_module(f"bench.bench_{name}")
        rc = module.main()
        print(f"=== bench {name}: {time.monotonic() - start:.0f} s ===", flush=True)
        if rc:
            return int(rc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
