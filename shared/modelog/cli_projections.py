"""`modelog projections rebuild`: replay modelog.events from offset 0 into a
fresh PostgreSQL schema, with a progress bar, and compare it with the live
read models. Exit 0: they match; 1: they differ (the tables are named)."""

import asyncio
import time
from datetime import datetime, timezone

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from modelog.settings import EngineEndpoints

console = Console()


def rebuild(keep: bool = typer.Option(False, help="keep the rebuilt schema instead of dropping it")) -> None:
    """Replay the whole log into a fresh schema and check it equals the live read models."""
    from projector.rebuild import READ_MODELS, dsn_in_schema, rebuild as replay, table_rows

    endpoints = EngineEndpoints()
    schema = f"rebuild_{datetime.now(timezone.utc):%Y%m%d%H%M%S}"

    async def run() -> list[str]:
        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            task = progress.add_task(f"replaying modelog.events into {schema}", total=None)
            started = time.monotonic()
            events = (await replay(endpoints, schema,
                                   lambda done, total: progress.update(task, completed=done, total=total))).events
        seconds = time.monotonic() - started
        console.print(f"replayed {events:,} events in {seconds:.1f}s ({events / max(seconds, 1e-9):,.0f} events/s)")
        differing = [table for table in READ_MODELS
                     if await table_rows(endpoints.postgres_dsn, table)
                     != await table_rows(dsn_in_schema(endpoints.postgres_dsn, schema), table)]
        if not keep:
            conn = await asyncpg.connect(endpoints.postgres_dsn)
            try:
                await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            finally:
                await conn.close()
        return differing

    differing = asyncio.run(run())
    if differing:
        console.print(f"[red]differ[/red] from the live read models: {', '.join(differing)} "
                      "(events committed during the replay differ too: rerun on a quiet registry)")
        raise typer.Exit(1)
    console.print(f"[green]match[/green]: every read model equals its replay{f' (kept in {schema})' if keep else ''}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The projector's read models: rebuild and check them.", no_args_is_help=True)
    group.command("rebuild")(rebuild)
    app.add_typer(group, name="projections")
