"""The sentinel is SIGKILLed mid-window, and again right after it decided,
and restarted each time while the monitoring keeps publishing: every breach
is still decided (none missed: the changelogged windows and the signals after
the last committed offset come back) and none is decided twice (the breach's
command id derives from model, version, rule and window, and a version that
no longer serves is not judged again), even when the restarted sentinel judges
on a book the decision it asked for has not reached yet (its requests apply
only at the seq they were judged on).

Real broker, real sentinel process (`python -m sentinel`) within the session's
stack, no mocks."""

import asyncio
import time

import pytest

from modelog import Client
from modelog_platform import services
from modelog_platform.settings import LocalStack, ServicePorts
from tests.e2e.helpers import token_for
from tests.e2e.sentinel_helpers import Monitoring, canary_on, canary_removed, events_of, sentinel_decisions, sentinel_status

pytestmark = pytest.mark.engines

WINDOW_S = 3  # tests/conftest.py's MODELOG_SENTINEL_WINDOW_S
FAILING_CANARY = {1: (90, 0), 2: (10, 5)}


@pytest.fixture
def people(stack):
    def person(subject: str, role: str) -> Client:
        return Client(stack.url("registrar"), stack.url("projector"), token=token_for(subject, role))
    publisher, admin, operator = person("ci-pipeline", "publisher"), person("ada", "admin"), person("olga", "operator")
    yield publisher, admin, operator
    for client in (publisher, admin, operator):
        client.close()


async def kill_and_restart(pause_s: float = 1.0, instance: str = "sentinel") -> None:
    await kill(instance)
    await asyncio.sleep(pause_s)
    await start(instance)


async def kill(instance: str) -> None:
    await asyncio.to_thread(services.kill, instance, LocalStack())


async def start(instance: str) -> None:
    local, ports = LocalStack(), ServicePorts()
    await asyncio.to_thread(services.start, instance, local)
    await asyncio.to_thread(services.wait_ready, instance, local, ports, 180)


def asked_to_drop_a_canary(stack) -> int:
    """How often this sentinel process has had an answer to a request dropping a canary."""
    return sum(n for what, n in sentinel_status(stack)["counts"].items() if what.endswith("_drop_canary"))


async def test_the_sentinel_killed_mid_window_and_after_deciding_misses_no_breach_and_decides_none_twice(
        engines, stack, people, tmp_path):
    publisher, admin, operator = people
    first, second, third = (canary_on(publisher, admin, operator, tmp_path) for _ in range(3))
    async with Monitoring(engines) as monitoring:
        # Killed a moment into the first failing window, and down while signals keep coming.
        serving = asyncio.create_task(monitoring.serve_until(first, FAILING_CANARY, canary_removed(operator, first)))
        await asyncio.sleep(WINDOW_S / 3)
        await kill_and_restart()
        await serving

        # Killed right after a decision, before it could commit what it consumed.
        await monitoring.serve_until(second, FAILING_CANARY, canary_removed(operator, second), tick_s=0.1)
        await kill_and_restart(pause_s=0)

        # Killed twice while a third model's canary fails, then left to decide.
        serving = asyncio.create_task(monitoring.serve_until(third, FAILING_CANARY, canary_removed(operator, third)))
        for _ in range(2):
            await asyncio.sleep(WINDOW_S / 2)
            if not serving.done():
                await kill_and_restart(pause_s=0.5)
        await serving

        # The same failing signals for a few more windows: the canaries are gone, nothing more is decided.
        until = time.monotonic() + 3 * WINDOW_S
        await asyncio.gather(*(monitoring.serve_until(m, FAILING_CANARY, lambda: time.monotonic() > until)
                               for m in (first, second, third)))
        await kill_and_restart(pause_s=0)
        await asyncio.sleep(2 * WINDOW_S)

    for model in (first, second, third):
        decided = sentinel_decisions(await events_of(engines, model))
        assert [(e.type, [(r.version, r.weight) for r in e.payload.routes]) for e in decided] == [
            ("TrafficSplitSet", [(1, 100)])], (model, decided)


async def test_a_sentinel_restarted_before_its_decision_reached_the_log_asks_for_it_no_second_time(
        engines, stack, people, tmp_path):
    """The promoter is down, so the sentinel's request is taken but not decided;
    the sentinel is killed and restarted meanwhile and judges the failing
    windows again, more of them closed now, on a book without the decision."""
    publisher, admin, operator = people
    model = canary_on(publisher, admin, operator, tmp_path)
    async with Monitoring(engines) as monitoring:
        await kill("promoter")
        try:
            await monitoring.serve_until(model, FAILING_CANARY, lambda: asked_to_drop_a_canary(stack) > 0)
            await kill_and_restart(pause_s=WINDOW_S)
            await monitoring.serve_until(model, FAILING_CANARY, lambda: asked_to_drop_a_canary(stack) > 0)
        finally:
            await start("promoter")
        await monitoring.serve_until(model, FAILING_CANARY, canary_removed(operator, model))
        until = time.monotonic() + 3 * WINDOW_S
        await monitoring.serve_until(model, FAILING_CANARY, lambda: time.monotonic() > until)

    decided = sentinel_decisions(await events_of(engines, model))
    assert [(e.type, [(r.version, r.weight) for r in e.payload.routes]) for e in decided] == [
        ("TrafficSplitSet", [(1, 100)])], decided
