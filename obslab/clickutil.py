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


class Toggles:
    """``--KIND.NAME`` / ``--no-KIND.NAME`` flags generated from a registry (node_exporter's style).

    ``items`` maps each name to (help text, enabled by default). The exporters build theirs from the
    collector and probe registries, so adding a module adds its flag.
    """

    def __init__(self, kind: str, items: dict[str, tuple[str, bool]]):
        self.kind = kind
        self.items = items

    def param(self, name: str) -> str:
        return f"{self.kind}_" + name.replace("-", "_").replace(".", "_")

    def options(self) -> list[click.Option]:
        return [
            click.Option(
                [f"--{self.kind}.{name}/--no-{self.kind}.{name}", self.param(name)],
                default=None,
                help=f"{text} [default: {'on' if on else 'off'}]",
            )
            for name, (text, on) in self.items.items()
        ]

    def explicit(self, params: dict[str, Any]) -> dict[str, bool | None]:
        """Each name's explicit choice from the parsed parameters: True, False or None (not given)."""
        return {name: params.get(self.param(name)) for name in self.items}

    def unknown(self, option: str) -> str | None:
        """The usage message for an unknown ``--KIND.X`` option, or None if it is not one of ours."""
        for prefix in (f"--{self.kind}.", f"--no-{self.kind}."):
            if option.startswith(prefix):
                return f"unknown {self.kind} {option[len(prefix) :]!r}; known {self.kind}s: {', '.join(self.items)}"
        return None


class ToggleCommand(click.Command):
    """A command with generated toggles: an unknown ``--KIND.X`` is a usage error listing the known names."""

    def __init__(self, *args: Any, toggles: Toggles, **kwargs: Any):
        self.toggles = toggles
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from obslab.errors import UsageError

        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as e:
            message = self.toggles.unknown(e.option_name)
            if message:
                raise UsageError(message) from None
            raise


def configure_logging(level: str) -> None:
    """Log to stderr with timestamps at ``level`` (debug, info, warning, error)."""
    import logging

    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )


def toggle_command(
    name: str, callback: Any, params: list[click.Parameter], toggles: Toggles
) -> ToggleCommand:
    """An exporter command: its own ``params``, then ``--log-level`` and the generated toggles.

    The callback's docstring is the command's help; it receives ``log_level`` and one parameter per toggle.
    """
    log_level = click.Option(
        ["--log-level"],
        type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
        default="info",
        show_default=True,
    )
    return ToggleCommand(
        name,
        toggles=toggles,
        callback=callback,
        params=[*params, log_level, *toggles.options()],
        help=callback.__doc__,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
