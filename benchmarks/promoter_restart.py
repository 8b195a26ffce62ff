"""Promoter restart to ready, and to its first decision: from snapshots vs a
fold of the whole log, against a running stack.

    uv run python benchmarks/promoter_restart.py [COMMANDS] [MODELS] [--reuse] [--ready-only]

Builds the log through the running promoter: COMMANDS (default 100,000)
RegisterVersion commands over MODELS (default 1,000) models, published as
benchmarks/promoter_throughput.py does, with snapshots written as they go (and
by time once the burst ends, so each partition's newest covers nearly all of
it). `--reuse` skips building and measures the log as it is (let the
promoter write snapshots of it first); `--ready-only` skips the first
decision, which waits behind any backlog of commands. Then the
promoter is restarted twice, in the same run: with snapshots (the newest
trustworthy one plus the tail), and with them turned off (a fold of the whole
log). Each restart prints the seconds from starting the process to /readyz
answering ready, and to the outcome of a first command on a model whose state
came from the snapshot (its head is checked against the log first).
Figures taken on a loaded machine are noisy: compare the two lines of one run.
"""

import asyncio
import sys
import time

import httpx
from promoter_throughput import make_commands, run_phase

from modelog_platform import services
from modelog_platform.adapters.log_reader import log_bounds
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints, LocalStack, ServicePorts
from promoter.snapshot_store import SnapshotStore, covered_offset

SNAPSHOT_EVERY_S = 5
BUILD_ENV = {"MODELOG_SNAPSHOT_EVERY_EVENTS": "20000", "MODELOG_SNAPSHOT_EVERY_S": str(SNAPSHOT_EVERY_S)}
NO_SNAPSHOTS = {"MODELOG_SNAPSHOT_EVERY_EVENTS": "0", "MODELOG_SNAPSHOT_EVERY_S": "0"}


def restart(env: dict[str, str]) -> float:
    """Seconds from starting the promoter process to its /readyz answering ready."""
    local = LocalStack()
    services.stop("promoter", local)
    started = time.perf_counter()
    services.start("promoter", local, env=env)
    services.wait_ready("promoter", local, ServicePorts(), timeout_s=3600)
    return time.perf_counter() - started


def status() -> dict:
    return httpx.get(f"{ServicePorts().url('promoter')}/v1/status", timeout=10).json()


def log_and_snapshots(endpoints: EngineEndpoints) -> tuple[dict[int, int], dict[int, int | None]]:
    """Per partition: the log's committed end, and where its newest snapshot ends."""
    ends = asyncio.run(log_bounds(endpoints, EVENTS_TOPIC))[1]
    store = SnapshotStore(endpoints)  # beside a local stack: its admin, who may list them
    newest = {p: store.keys(p)[:1] for p in ends}
    return ends, {p: covered_offset(keys[0]) if keys else None for p, keys in newest.items()}


async def first_decision(endpoints: EngineEndpoints, models: int) -> float:
    """Seconds to the outcome of one command on an existing model."""
    elapsed, _ = await run_phase(endpoints, make_commands(1, models)[:1], rate=None)
    return elapsed


def measure(endpoints: EngineEndpoints, env: dict[str, str], models: int, first: bool) -> tuple[float, float | None]:
    ready = restart(env)
    if not first:
        return ready, None
    started = time.perf_counter()
    asyncio.run(first_decision(endpoints, models))
    return ready, ready + time.perf_counter() - started


def line(what: str, ready: float, first: float | None) -> str:
    return f"restart, {what}: ready in {ready:6.2f} s" + ("" if first is None else f", first decision at {first:6.2f} s")


def main(count: int, models: int, reuse: bool, first: bool) -> None:
    endpoints = EngineEndpoints()
    if not reuse:
        print(f"building the log: {count:,} commands over {models:,} models through the promoter…")
        restart(BUILD_ENV)
        commands = make_commands(count, models)
        elapsed, _ = asyncio.run(run_phase(endpoints, commands, rate=None))
        print(f"built in {elapsed:.0f} s ({count / elapsed:.0f} commands/s)")
        time.sleep(SNAPSHOT_EVERY_S + 5)  # the time trigger covers the burst's last batches
    ends, covered = log_and_snapshots(endpoints)
    tail = sum(ends[p] - (covered.get(p) or 0) for p in ends)
    print(f"log: {sum(ends.values()):,} offsets of {EVENTS_TOPIC} over {len(ends)} partitions; "
          f"newest snapshots leave a tail of {tail:,} offsets"
          + ("" if all(covered.values()) else f" (no snapshot yet of {sum(1 for c in covered.values() if not c)})"))

    with_ready, with_first = measure(endpoints, BUILD_ENV, models, first)
    used = {p: s["restored_from"] for p, s in status()["snapshots"].items()}
    without_ready, without_first = measure(endpoints, NO_SNAPSHOTS, models, first)
    print(line("whole log     ", without_ready, without_first))
    print(line("from snapshots", with_ready, with_first)
          + f" ({sum(1 for u in used.values() if u)} of {len(used)} partitions from a snapshot)")
    local = LocalStack()  # leave the promoter running as the stack runs it
    services.stop("promoter", local)
    services.start("promoter", local)
    services.wait_ready("promoter", local, ServicePorts(), timeout_s=3600)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 100_000, int(args[1]) if len(args) > 1 else 1_000, "--reuse" in sys.argv,
         "--ready-only" not in sys.argv)
