"""Fixtures of the stack tests (helpers in stackenv.py, shared with tests/web)."""

from stackenv import isolated_stack

__all__ = ["isolated_stack"]
