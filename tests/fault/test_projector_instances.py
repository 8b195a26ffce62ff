"""Two projector instances share modelog.events as one consumer group. Each is
SIGKILLed in turn in the middle of a burst, while it holds partitions with
events still to project, and restarted: the other takes all twelve partitions,
hands half back when its partner returns, and in the end the read models equal
a fresh rebuild from offset 0, every command has its outcome, and a webhook's
outbox (filled in the projection's transaction, one row per event projected)
holds every event of the burst exactly once."""

import asyncio
import time
from collections import Counter
from uuid import uuid4

import httpx
import pytest

from modelog_platform import services
from modelog_platform.adapters.postgres import connect
from modelog_platform.engines import procs
from modelog_platform.settings import LocalStack
from tests.e2e.helpers import bearer
from tests.fault.read_side import (
    assert_read_models_equal_a_rebuild,
    burst,
    committed_data_offsets,
    lag,
    publish,
    wait_for_all_outcomes,
    wait_until_caught_up,
)

pytestmark = pytest.mark.engines

FIRST, SECOND = "projector", "projector-2"
MODELS, VERSIONS = 36, 50  # 1,800 registrations, then transitions, metrics, aliases
ROUNDS = 3  # a kill after each of the first two
BEHIND = 50  # events the victim's partitions must still lack when it dies
REBALANCE_WAIT_S = 180  # a dead member is noticed after the 6 s session timeout; generous for a loaded machine


@pytest.fixture
def instances(stack):
    """The stack's projector and a second instance beside it (its port: the
    first one's + 50), each one's ports by name. Whatever happens, the second
    is stopped afterwards and the first runs again."""
    local = LocalStack()
    ports = {FIRST: stack, SECOND: stack.model_copy(update={"projector_port": stack.projector_port + 50})}
    try:
        start(local, ports[SECOND], SECOND)
        yield ports
    except BaseException:
        for name in ports:
            print(f"--- {name} (last lines) ---\n{procs.log_tail(services.log_path(local, name), 60)}")
        raise
    finally:
        services.stop(SECOND, local)
        start(local, ports[FIRST], FIRST)


def start(local: LocalStack, ports, instance: str) -> None:
    services.start(instance, local, env={"MODELOG_PROJECTOR_PORT": str(ports.projector_port)})
    services.wait_ready(instance, local, ports, timeout_s=120)


async def held_partitions(url: str) -> set[int] | None:
    """The partitions an instance projects, or None while it is not ready."""
    try:
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"{url}/readyz", timeout=5)).json()
    except (httpx.HTTPError, ValueError):
        return None
    return set(body["checks"]["partitions"]) if body.get("ready") else None


async def wait_for_shares(urls: dict[str, str], want, what: str) -> dict[str, set[int]]:
    """Until every instance is ready and `want(shares)` holds; the shares then."""
    deadline = time.monotonic() + REBALANCE_WAIT_S
    while True:
        shares = {name: await held_partitions(url) for name, url in urls.items()}
        if None not in shares.values() and want(shares):
            return shares
        assert time.monotonic() < deadline, f"after {REBALANCE_WAIT_S}s, not {what}: {shares}"
        await asyncio.sleep(0.25)


def split_between_both(shares: dict[str, set[int]]) -> bool:
    first, second = shares.values()
    return bool(first) and bool(second) and not first & second and first | second == set(range(12))


async def wait_for_split(urls: dict[str, str]) -> dict[str, set[int]]:
    return await wait_for_shares(urls, split_between_both, "twelve partitions split between both")


async def wait_for_all_on(urls: dict[str, str], survivor: str) -> set[int]:
    shares = await wait_for_shares({survivor: urls[survivor]}, lambda s: s[survivor] == set(range(12)),
                                   f"all twelve partitions on {survivor}")
    return shares[survivor]


async def wait_until_behind(engines, partitions: set[int]) -> int:
    """Until the victim's partitions lack events, so the kill lands mid-stream."""
    deadline = time.monotonic() + 60
    while (behind := await lag(engines, "projector", sorted(partitions))) <= BEHIND:
        assert time.monotonic() < deadline, f"the projection never fell {BEHIND} events behind on {partitions}"
        await asyncio.sleep(0.02)
    return behind


async def register_webhook(stack) -> str:
    """Every model's events, to a port nobody listens on: queued, never delivered."""
    async with httpx.AsyncClient(base_url=stack.url("projector"), headers=bearer("test-harness", "reader")) as api:
        response = await api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/nobody",
                                                        "secret": "instances-test-secret"})
        assert response.status_code == 201, response.text
        return response.json()["id"]


async def remove_webhook(stack, webhook_id: str) -> None:
    async with httpx.AsyncClient(base_url=stack.url("projector"), headers=bearer("test-harness", "reader")) as api:
        assert (await api.delete(f"/v1/webhooks/{webhook_id}")).status_code in (200, 204)


async def outbox_event_ids(engines, webhook_id: str, model_prefix: str) -> Counter:
    conn = await connect(engines.postgres())
    try:
        rows = await conn.fetch("SELECT event_id FROM webhook_outbox WHERE webhook_id = $1 AND model LIKE $2",
                                webhook_id, f"{model_prefix}%")
    finally:
        await conn.close()
    return Counter(r["event_id"] for r in rows)


async def test_two_projectors_one_killed_at_a_time_stay_exact(stack, engines, instances):
    local = LocalStack()
    urls = {name: port.url("projector") for name, port in instances.items()}
    print("split at start", await wait_for_split(urls))
    run = uuid4().hex[:6]
    commands = burst(run, MODELS, VERSIONS)
    webhook_id = await register_webhook(stack)
    try:
        size = len(commands) // ROUNDS + 1
        moves = []
        for victim, survivor, round_ in [(SECOND, FIRST, 0), (FIRST, SECOND, 1)]:
            held = (await wait_for_split(urls))[victim]
            # Watched while it is published, so the kill lands at the peak of the stream.
            publishing = asyncio.create_task(publish(engines, commands[round_ * size:(round_ + 1) * size]))
            behind = await wait_until_behind(engines, held)
            services.kill(victim, local)
            await publishing
            took = await wait_for_all_on(urls, survivor)
            await asyncio.to_thread(start, local, instances[victim], victim)
            moves.append((victim, sorted(held), behind, survivor, sorted(took), await wait_for_split(urls)))
        for move in moves:
            print("killed {} holding {} ({} events behind); {} took {}; split after restart {}".format(*move))
        await publish(engines, commands[(ROUNDS - 1) * size:])

        await wait_for_all_outcomes(stack, commands)
        after_last, events = await committed_data_offsets(engines)
        await wait_until_caught_up(engines, "projector", after_last)
        print(f"{len(commands)} commands, {len(events)} events in the log")
        await assert_read_models_equal_a_rebuild(engines, events)

        ours = f"read-{run}-"
        queued = await outbox_event_ids(engines, webhook_id, ours)
        assert {i: n for i, n in queued.items() if n > 1} == {}, "events projected twice"
        assert set(queued) == {e.event_id for e in events if e.model.startswith(ours)}
    finally:
        await remove_webhook(stack, webhook_id)
