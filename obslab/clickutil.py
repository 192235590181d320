"""Small shared pieces for the command-line interface: lazy groups and output helpers.

Data goes to stdout (plain or ``--json``), messages to stderr.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click
from rich.console import Console

#: Messages, progress and tables meant for a person go to stderr; stdout is for data.
err_console = Console(stderr=True)
out_console = Console()


class LazyGroup(click.Group):
    """A group whose sub-commands are imported only when used (``name -> "module:attribute"``).

    Keeps ``obslab --help`` fast and lets each area of the code own its command in its own module.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = sorted({*super().list_commands(ctx), *self.lazy})
        return [n for n in names if self.get_command(ctx, n) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attr = self.lazy[cmd_name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as e:
                if e.name != module_name:  # a real bug inside the module: let it show
                    raise
                return None  # this area is not built (yet): the command is simply not offered
            cmd = getattr(module, attr)
            if not isinstance(cmd, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            return cmd
        return super().get_command(ctx, cmd_name)


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
