"""The projector and the auditor are SIGKILLed again and again while they
consume a burst of events, and restarted each time. Afterwards the projector's
read models equal a fresh rebuild from offset 0, and the audit store holds
every event of the log exactly once: rows and offsets commit together."""

import asyncio
import random
import time
from uuid import uuid4

import pytest

from modelog_platform import services
from modelog_platform.settings import LocalStack
from tests.fault.read_side import (
    assert_read_side_equals_the_log,
    burst,
    committed_data_offsets,
    lag,
    publish,
    wait_for_all_outcomes,
)

pytestmark = pytest.mark.engines

MODELS, VERSIONS = 50, 100  # 5,000 registrations, then transitions, aliases, metrics
KILLS_EACH = 5


async def lag_once_behind(engines, projection: str, behind: int = 50, patience_s: float = 5) -> int:
    """Wait (briefly) until the projection is mid-stream, so the kill lands there."""
    deadline = time.monotonic() + patience_s
    while (current := await lag(engines, projection)) <= behind and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return current


async def publish_while_killing(stack, engines, commands, rng: random.Random, kills: list) -> None:
    """One round of commands per kill: the projection is mid-stream when it dies."""
    local = LocalStack()
    rounds = KILLS_EACH * 2
    size = len(commands) // rounds + 1
    for i in range(rounds):
        service = ("projector", "auditor")[i % 2]
        await publish(engines, commands[i * size:(i + 1) * size])
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        behind = await lag_once_behind(engines, service)
        services.kill(service, local)
        kills.append((service, behind))
        services.start(service, local)
        await asyncio.to_thread(services.wait_ready, service, local, stack, 120)


async def test_projector_and_auditor_killed_mid_burst_lose_and_duplicate_nothing(stack, engines):
    rng = random.Random()
    commands = burst(uuid4().hex[:6], MODELS, VERSIONS)
    kills: list = []
    await publish_while_killing(stack, engines, commands, rng, kills)
    print("kills (service, events behind)", kills)
    # Most kills must land mid-stream, or this would prove little.
    assert sum(1 for _, behind in kills if behind > 50) >= KILLS_EACH, kills
    await wait_for_all_outcomes(stack, commands)

    after_last, events = await committed_data_offsets(engines)
    await assert_read_side_equals_the_log(engines, after_last, events)
