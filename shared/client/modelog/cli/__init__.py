"""The `modelog` command.

The registry commands (register, promote, ls, ...) and the auditor's questions
come with the client. The platform's own commands (up, down, engines, demo,
token, projections, audit verify) are added by the packages that implement
them, through the `modelog.cli` entry point group, so installing the SDK never
pulls in the server side.
"""

import sys
from importlib.metadata import entry_points

import typer
from rich.console import Console

from modelog.cli import audit, cards, mlflow_import, registry, serving, splits, ui

app = typer.Typer(help="modelog: an event-sourced ML model registry.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail: ask it questions, export it, verify and seal it.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")
registry.install(app)
mlflow_import.install(app)
cards.install(app)
splits.install(app)
serving.install(app)
ui.install(app)
audit.register(audit_app)

PLATFORM_COMMANDS = ("up", "down", "status", "engines", "demo", "token", "projections")


_added: list[str] = []


def with_installed_commands() -> typer.Typer:
    """`app`, once each installed `modelog.cli` entry point has added its commands."""
    for entry in entry_points(group="modelog.cli"):
        if entry.name not in _added:
            _added.append(entry.name)
            entry.load()(app)
    return app


def main() -> None:
    with_installed_commands()
    asked = sys.argv[1] if len(sys.argv) > 1 else ""
    group = typer.main.get_command(app)
    if asked in PLATFORM_COMMANDS and asked not in getattr(group, "commands", {}):
        # One unwrapped line: the command to run must survive a narrow terminal whole.
        Console(stderr=True, soft_wrap=True).print(
            f"`modelog {asked}` runs the platform, which this installation does not have: "
            "`pip install modelog-platform`, or run it from a modelog checkout (`make up`).", highlight=False)
        raise SystemExit(2)
    app()
