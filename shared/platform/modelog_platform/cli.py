"""The platform's commands of `modelog`: run the local stack (up, down, status,
engines, demo), issue development tokens, and verify the log against Kafka and
S3 (audit verify).

They join the client's `modelog` command through the `modelog.cli` entry
point (see `register`). Engines, Kafka and S3 clients are imported inside each
command: every `modelog ls` loads this module, and should not pay for them.
"""

import time
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from modelog_platform.identity.roles import ROLES
from modelog_platform.settings import EngineEndpoints, LocalStack, ServicePorts

engines_app = typer.Typer(help="The local engines: Kafka, PostgreSQL, SeaweedFS (S3).",
                          no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens from the development issuer.", no_args_is_help=True)
console = Console()


def report(line: str) -> None:
    console.print(line, highlight=False)


@engines_app.command("up")
def engines_up() -> None:
    """Install what is missing and start the engines (idempotent)."""
    from modelog_platform import engines
    started = time.monotonic()
    engines.up(EngineEndpoints(), LocalStack(), report=report)
    report(f"engines ready in {time.monotonic() - started:.1f}s")


@engines_app.command("status")
def engines_status() -> None:
    """Show each engine: running, pid, port, resident memory."""
    from modelog_platform import engines
    table = Table("engine", "running", "pid", "port", "rss MB")
    for name, info in engines.status(EngineEndpoints(), LocalStack()).items():
        table.add_row(name, _yes(info.get("running")), str(info.get("pid") or "-"),
                      str(info.get("port") or "-"), str(info.get("rss_mb") or "-"))
    console.print(table)


def status() -> None:
    """Show the engines, then the five services (running, pid, port, URL, ready),
    of the stack home in use."""
    from modelog_platform import services
    stack = LocalStack()
    report(f"stack home: {stack.home}")
    engines_status()
    table = Table("service", "running", "pid", "port", "url", "ready")
    for name, info in services.status(stack, ServicePorts()).items():
        table.add_row(name, _yes(info["running"]), str(info["pid"] or "-"), str(info["port"]), info["url"],
                      _yes(info["ready"]))
    console.print(table)


def _yes(flag) -> str:
    return "yes" if flag else "no"


@engines_app.command("down")
def engines_down() -> None:
    """Stop the engines this checkout started."""
    from modelog_platform import engines
    engines.down(LocalStack(), report=report)


@engines_app.command("provision")
def engines_provision() -> None:
    """Create the topics, their ACLs and the artifact bucket on engines run elsewhere (compose, production)."""
    from modelog_platform.adapters.s3 import ArtifactStore
    from modelog_platform.engines.kafka import provision_kafka
    endpoints = EngineEndpoints()
    provision_kafka(endpoints)
    created = ArtifactStore(endpoints).ensure_bucket()
    report(f"topics provisioned; bucket {endpoints.artifact_bucket} "
           f"{'created' if created else 'already there'}")


def up() -> None:
    """Start the engines and the five services; print their URLs."""
    from modelog_platform import services
    engines_up()
    services.up(LocalStack(), ServicePorts(), report=report)


def down() -> None:
    """Stop the services and the engines; no process is left behind."""
    from modelog_platform import engines, services
    services.down(LocalStack(), report=report)
    engines.down(LocalStack(), report=report)


def demo() -> None:
    """Run the scripted scenario against the running stack (see `modelog up`)."""
    from modelog_platform import demo as scenario
    scenario.run()


def audit_verify(topic: str = typer.Option("modelog.events", help="the log, or a copy of it"),
                 seals: bool = typer.Option(True, help="also check the log against every seal in S3")) -> None:
    """Re-read the log and check that the log's writer signed every event, then
    every model's chain, then every seal (signature, seal chain, each sealed
    head in the log with its hash); name each thing that is wrong (an unsigned
    or badly signed event by model, seq, partition, offset and problem).
    Exit code 0: intact; 1: broken."""
    import asyncio

    from rich.progress import Progress

    from modelog_contract.audit.verify import StoredRecord, verify
    from modelog_contract.replay_proofs import CHUNK, workers_for
    from modelog_platform.adapters.log_reader import log_bounds
    from modelog_platform.adapters.read_aside import partition_runs_read_aside
    from modelog_platform.log_signing import trusted_keys
    from modelog_platform.settings import LogTrustSettings

    endpoints = EngineEndpoints()
    trusted = trusted_keys(LogTrustSettings())
    stored_seals, stored_breaks, key = [], [], None
    if seals:  # the S3 client only then: with --no-seals, its import is a good part of a short run
        from modelog_platform.adapters.seal_store import SealStore, public_key
        stored = SealStore(endpoints).all()
        stored_seals, stored_breaks, key = stored.seals, stored.breaks, public_key() if stored.seals else None
    firsts, ends = asyncio.run(log_bounds(endpoints, topic))
    ranges = {p: (firsts[p], ends[p]) for p in ends}
    with Progress(console=console, transient=True) as progress:
        reading = progress.add_task(f"reading {topic}", total=None)
        # Partition by partition, in offset order, proven while the next are
        # read: a fetch hands over a few records of each partition at a time,
        # and a chunk of such a mix holds about one event per model, so its
        # runs would need a signature check for nearly every event.
        runs = partition_runs_read_aside(endpoints, topic, ranges, CHUNK, lambda done, total: progress.update(
            reading, completed=done, total=total))
        verdict = verify((StoredRecord(r.partition, r.offset, r.value) for run in runs for r in run),
                         stored_seals, key, trusted=trusted,
                         workers=workers_for(sum(stop - start for start, stop in ranges.values())))
    for broken in verdict.breaks:
        console.print(f"[red]BROKEN[/red] {broken}", highlight=False)
    for seal_broken in stored_breaks + verdict.seal_breaks:
        console.print(f"[red]SEAL BROKEN[/red] {seal_broken}", highlight=False)
    problems = len(verdict.breaks) + len(stored_breaks) + len(verdict.seal_breaks)
    if problems:
        console.print(f"{problems} problem(s) in {verdict.events} events of {verdict.models} models"
                      f" checked against {verdict.seals} seal(s)")
        raise typer.Exit(1)
    console.print(f"[green]intact[/green]: {verdict.events} events, {verdict.models} models, every chain verifies"
                  + (f"; {verdict.seals} seal(s) verify and agree with the log" if seals else ""))


@token_app.command("init")
def token_init() -> None:
    """Make the development issuer's key pair under the stack home unless it
    exists, and print where its public key is (what services trust)."""
    from modelog_platform.identity.dev import DevIssuer

    print(DevIssuer.local().ensure().public_key_file)


@token_app.command("issue")
def token_issue(sub: str = typer.Option(..., help="who the token speaks for"),
                roles: str = typer.Option("", help=f"comma-separated: {', '.join(ROLES)}"),
                grant: list[str] = typer.Option([], help="model:NAME or prefix:PREFIX, repeatable; none: all models"),
                ttl: int = typer.Option(3600, help="seconds the token is valid")) -> None:
    """Print a token signed by the development issuer of the stack home (see
    `modelog up`, `modelog token init`), for `Authorization: Bearer ...`."""
    from modelog_platform.identity.dev import DevIssuer
    from modelog_platform.identity.permissions import grant_claim
    from modelog_platform.identity.roles import unknown_roles

    asked = [r.strip() for r in roles.split(",") if r.strip()]
    if unknown := unknown_roles(asked):
        usage_error(f"unknown role(s) {', '.join(unknown)}: the roles are {', '.join(ROLES)}")
    try:
        grants = [grant_claim(g) for g in grant]
    except ValueError as error:
        usage_error(str(error))
    issuer = DevIssuer.local()
    if not issuer.can_sign():
        # Making a pair here would mint tokens no running service trusts.
        usage_error(f"no development issuer at {issuer.directory} (the stack home is MODELOG_HOME, else the "
                    "nearest .modelog directory from here). Run this inside the checkout whose stack is up, "
                    "or set MODELOG_HOME to its .modelog; `modelog up` starts a stack and its issuer, "
                    "`modelog token init` makes only the issuer.")
    _, token = issuer.issue(sub, asked, grants, ttl_s=ttl)
    print(token)


def usage_error(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]{message}[/red]", highlight=False)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """The `modelog.cli` entry point: add these commands to the `modelog` command."""
    from modelog.cli import audit_app

    app.add_typer(engines_app, name="engines")
    app.add_typer(token_app, name="token")
    for command in (up, down, status, demo):
        app.command(command.__name__)(command)
    audit_app.command("verify")(audit_verify)
