"""`modelog projections rebuild`: replay modelog.events from offset 0 into a
fresh PostgreSQL schema, with a progress bar, and compare it with the live
read models. Exit 0: they match; 1: they differ (the tables are named).
With --switch the replay then takes the live read models' place (blue/green)
and the exit is 0 once it has: repairing a differing read model is the point."""

import asyncio
import time
from datetime import datetime, timezone

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from modelog_platform.settings import EngineEndpoints

console = Console()


def rebuild(keep: bool = typer.Option(False, help="keep the rebuilt schema instead of dropping it"),
            switch: bool = typer.Option(False, help="then serve from the rebuilt read models (blue/green)")) -> None:
    """Replay the whole log into a fresh schema and check it equals the live read models;
    with --switch, put it in their place while the projector runs."""
    from projector.rebuild import IncompleteLog, MalformedEvent

    endpoints = EngineEndpoints()
    schema = f"rebuild_{datetime.now(timezone.utc):%Y%m%d%H%M%S}"
    try:
        differing = asyncio.run(replay_and_compare(endpoints, schema, keep, switch))
    except (IncompleteLog, MalformedEvent) as refused:
        console.print(f"[red]refused[/red]: {refused}; the live read models are untouched")
        raise typer.Exit(1) from None
    if switch:
        return
    if differing:
        console.print(f"[red]differ[/red] from the live read models: {', '.join(differing)} "
                      "(events committed during the replay differ too: rerun on a quiet registry)")
        raise typer.Exit(1)
    console.print(f"[green]match[/green]: every read model equals its replay{f' (kept in {schema})' if keep else ''}")


async def replay_and_compare(endpoints: EngineEndpoints, schema: str, keep: bool, switch: bool) -> list[str]:
    """The replay into `schema`; returns the read-model tables that differ from the live ones."""
    from projector.rebuild import READ_MODELS, drop_schema, projector_login, table_rows
    from projector.rebuild import rebuild as replay
    from projector.switch import switch_over

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"replaying modelog.events into {schema}", total=None)
        started = time.monotonic()
        replayed = await replay(endpoints, schema,
                                lambda done, total: progress.update(task, completed=done, total=total))
    seconds = time.monotonic() - started
    console.print(f"replayed {replayed.events:,} events in {seconds:.1f}s "
                  f"({replayed.events / max(seconds, 1e-9):,.0f} events/s)")
    login = projector_login(endpoints)
    differing = [table for table in READ_MODELS
                 if await table_rows(login, table) != await table_rows(login.in_schema(schema), table)]
    if switch:
        if differing:
            console.print(f"the replay differs from the live read models in {', '.join(differing)}: "
                          "switching repairs them (or they moved on during the replay)")
        with console.status("switching over: catching up with the live projector, then moving the tables"):
            switched = await switch_over(endpoints, schema, replayed.next_offsets)
        console.print(f"[green]switched[/green]: the read models are now the replay "
                      f"(+{switched.caught_up:,} events applied to catch up); the previous ones are kept in "
                      f"schema {switched.retired_schema} (`modelog projections drop-retired "
                      f"{switched.retired_schema}` once you no longer need them)")
    elif not keep:
        await drop_schema(login, schema)
    return differing


def retired() -> None:
    """List the read models switches retired, oldest first."""
    from projector.rebuild import projector_login
    from projector.switch import retired_schemas

    schemas = asyncio.run(retired_schemas(projector_login(EngineEndpoints())))
    for schema, models in schemas:
        console.print(f"{schema}  {models:,} models")
    if not schemas:
        console.print("no retired read models")


def drop_retired(schema: str = typer.Argument(..., help="a schema `projections retired` lists")) -> None:
    """Drop read models a switch retired (their tables and rows)."""
    from projector.rebuild import projector_login
    from projector.switch import drop_retired as drop

    try:
        asyncio.run(drop(projector_login(EngineEndpoints()), schema))
    except ValueError as refused:
        console.print(f"[red]refused[/red]: {refused}")
        raise typer.Exit(2) from None
    except asyncpg.InvalidSchemaNameError:
        console.print(f"[red]no schema {schema}[/red]: see `modelog projections retired`")
        raise typer.Exit(1) from None
    console.print(f"dropped {schema}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The projector's read models: rebuild, check and switch them.", no_args_is_help=True)
    group.command("rebuild")(rebuild)
    group.command("retired")(retired)
    group.command("drop-retired")(drop_retired)
    app.add_typer(group, name="projections")
