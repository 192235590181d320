"""Fixtures of the console tests; the stack helpers are shared with tests/stack."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "stack"))

from stackenv import isolated_stack

__all__ = ["isolated_stack"]
