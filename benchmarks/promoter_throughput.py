"""Promoter throughput and command -> committed-event latency, against a running stack.

    uv run python benchmarks/promoter_throughput.py [COMMANDS] [MODELS] [RATE]

First, in this process, what one command's token check costs the promoter,
through PyJWT (as before) and through the direct Ed25519 path it takes now,
on the same tokens. Then two phases against the stack. Burst: COMMANDS (default 20,000) RegisterVersion commands over
MODELS (default 200) models, published at once: decided commands/s. Steady:
RATE (default 500) commands/s for 10 s: command -> committed event p50/p99.
Both go to the stack the
MODELOG_* environment points at (the local `modelog up` stack on default
ports when unset). Commands are published as fast as an idempotent, acks=all
producer allows; modelog.events is read with read_committed, and each
command's outcome is its closes_decision event. Latency runs from just before
the command is handed to the producer (so producer batching counts) to the
moment its committed event is read. Throughput is decided commands over the
time from the first send to the last outcome.

After each phase, once the projector and the auditor have caught up (idle),
the CPU seconds each process of the stack spent in it, and the stack's CPU
per command (benchmarks/stack_cpu.py; not the benchmark's own process): on a
machine others load too, that is the figure to compare before/after. Start it
with the promoter ready: a restore still running would be counted too.
"""

import asyncio
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from hashlib import sha256
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer
from log_end import consumer_at_end
from stack_cpu import per_process, spent_since, stack_cpu_s, wait_until_idle

from modelog_contract.codec import decode_event, encode
from modelog_contract.domain.commands import RegisterVersion
from modelog_contract.domain.types import Actor, Artifact
from modelog_platform.adapters.commands import authorization_header
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.identity.dev import DevIssuer, signed
from modelog_platform.settings import COMMANDS_TOPIC, EngineEndpoints

ACTOR = Actor(subject="benchmark")
TIMEOUT_S = 300


def make_commands(count: int, models: int) -> list[tuple[RegisterVersion, str]]:
    """Commands, each signed with a token of its own (the dev issuer's)."""
    run = uuid4().hex[:8]
    names = [f"bench-{run}-{i:04d}" for i in range(models)]
    commands = []
    for i in range(count):
        digest = sha256(f"{run}/{i}".encode()).hexdigest()
        commands.append(signed(RegisterVersion(
            command_id=uuid4(), model=names[i % models], actor=ACTOR,
            issued_at=datetime.now(timezone.utc),
            artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}", sha256=digest, size=i + 1),
            run_id=f"bench-{i}", metrics={"auc": 0.9},
        ), ttl_s=3600))
    return commands


async def follow(consumer, sent_at: dict[UUID, float], decided_at: dict[UUID, float],
                 done: asyncio.Event) -> None:
    while not done.is_set():
        for batch in (await consumer.getmany(timeout_ms=100)).values():
            now = time.perf_counter()
            for record in batch:
                event = decode_event(record.value)
                if event.closes_decision and event.command_id in sent_at:
                    decided_at.setdefault(event.command_id, now)
        if len(decided_at) == len(sent_at):
            done.set()


async def run_phase(endpoints: EngineEndpoints, commands: list[tuple[RegisterVersion, str]],
                    rate: float | None) -> tuple[float, list[float]]:
    """Publish the commands (as fast as possible, or paced at `rate` per second)
    and wait for every outcome: (seconds from first send to last outcome, latencies in ms)."""
    sent_at: dict[UUID, float] = {c.command_id: 0.0 for c, _ in commands}
    decided_at: dict[UUID, float] = {}
    done = asyncio.Event()
    consumer = await consumer_at_end(endpoints)
    producer = AIOKafkaProducer(**kafka_connection(endpoints),
                                enable_idempotence=True, acks="all", linger_ms=0 if rate else 5)
    await producer.start()
    follower = asyncio.create_task(follow(consumer, sent_at, decided_at, done))
    try:
        started = time.perf_counter()
        pending = []
        for i, (command, token) in enumerate(commands):
            if rate:
                await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            sent_at[command.command_id] = time.perf_counter()
            pending.append(await producer.send(COMMANDS_TOPIC, key=command.model.encode(),
                                               value=encode(command), headers=authorization_header(token)))
        await asyncio.gather(*pending)
        try:
            await asyncio.wait_for(done.wait(), TIMEOUT_S)
        except asyncio.TimeoutError:
            print(f"only {len(decided_at)} of {len(commands)} commands decided after {TIMEOUT_S} s")
            raise SystemExit(1) from None
    finally:
        done.set()
        await follower
        await producer.stop()
        await consumer.stop()
    latencies = sorted((decided_at[c] - sent_at[c]) * 1000 for c in decided_at)
    return max(decided_at.values()) - started, latencies


def token_check_cost(tokens: list[str]) -> str:
    """Microseconds per token: PyJWT's decode, then TokenVerifier.verify (the direct path)."""
    verifier = DevIssuer.local().verifier()
    key = verifier.keys.key_for(tokens[0])
    costs = []
    for check in (lambda t: verifier.library_claims(t, key), verifier.verify):
        started = time.perf_counter()
        for token in tokens:
            check(token)
        costs.append((time.perf_counter() - started) / len(tokens) * 1e6)
    return f"token check per command: PyJWT {costs[0]:.0f} us, direct {costs[1]:.0f} us"


def percentiles(latencies_ms: list[float]) -> str:
    q = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, max {latencies_ms[-1]:.1f} ms"


async def main(count: int, models: int, rate: float) -> None:
    endpoints = EngineEndpoints()
    print(f"promoter benchmark against kafka {endpoints.kafka_bootstrap}; one Kafka transaction "
          f"per batch of decisions (no commit timer); load average {os.getloadavg()[0]:.1f}")
    burst = make_commands(count, models)
    print(token_check_cost([token for _, token in burst[:2000]]))
    cpu = stack_cpu_s()
    elapsed, latencies = await run_phase(endpoints, burst, rate=None)
    print(f"burst: {count} commands over {models} models decided in {elapsed:.1f} s: "
          f"{count / elapsed:.0f} commands/s (latency includes the backlog: {percentiles(latencies)})")
    await asyncio.to_thread(wait_until_idle)
    print(f"  CPU during the burst and its catching up: {per_process(spent_since(cpu), count)}")
    paced = int(rate * 10)
    cpu = stack_cpu_s()
    elapsed, latencies = await run_phase(endpoints, make_commands(paced, models), rate=rate)
    print(f"steady: {paced} commands at {rate:.0f}/s for {elapsed:.1f} s: "
          f"command -> committed event {percentiles(latencies)}")
    await asyncio.to_thread(wait_until_idle)
    print(f"  CPU during the steady phase and its catching up: {per_process(spent_since(cpu), paced)}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 200,
                     float(sys.argv[3]) if len(sys.argv) > 3 else 500.0))
