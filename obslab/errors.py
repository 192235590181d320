"""Exit codes and the exceptions that carry them (the CLI contract in docs/architecture.md)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import click


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # a check failed, a wrong answer
    USAGE = 2  # bad flags or arguments (click's own default for usage errors)
    ENVIRONMENT = 3  # something the machine lacks: root, BPF, a binary, a free port


class ObslabError(click.ClickException):
    """An error with a one-line message for the user and a fixed exit code."""

    exit_code = ExitCode.CHECK_FAILED

    def show(self, file: Any = None) -> None:
        click.echo(f"obslab: {self.format_message()}", err=True)


class UsageError(ObslabError):
    exit_code = ExitCode.USAGE


class EnvironmentMissing(ObslabError):
    """The machine lacks something (privileges, a kernel feature, a binary, a free port)."""

    exit_code = ExitCode.ENVIRONMENT


class CheckFailed(ObslabError):
    exit_code = ExitCode.CHECK_FAILED
