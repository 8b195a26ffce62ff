"""Several instances of every service on one stack: three promoters, two
projectors, two auditors and two registrars behind a round-robin proxy. A
burst of registrations goes through the proxy while one promoter is SIGKILLed
and another is added (two rebalances of the commands' partitions); afterwards
every accepted write has exactly one outcome, every chain verifies, the read
models equal a rebuild and the audit rows equal the log."""

import asyncio
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import httpx
import pytest

from modelog_contract.domain.chain import first_broken_link
from modelog_platform import services
from modelog_platform.settings import LocalStack
from tests.e2e.helpers import bearer
from tests.fault import instances
from tests.fault.instances import instance_name, split_among_all, wait_for_shares
from tests.fault.read_side import (
    assert_read_side_equals_the_log,
    committed_data_offsets,
)
from tests.fault.round_robin import RoundRobinProxy

pytestmark = pytest.mark.engines

MODELS, WRITERS, WRITES = 12, 8, 240
# The instances this test adds to the stack's one of each; promoter 4 joins mid-burst.
ADDED = [("promoter", 2), ("promoter", 3), ("projector", 2), ("auditor", 2), ("registrar", 2)]
KILLED, JOINING = instance_name("promoter", 2), instance_name("promoter", 4)


@dataclass
class Burst:
    run: str = field(default_factory=lambda: uuid4().hex[:6])
    answers: list[tuple[int, UUID | None]] = field(default_factory=list)  # (status, command id)
    started: int = 0

    @property
    def models(self) -> list[str]:
        return [f"scale-{self.run}-{m:02d}" for m in range(MODELS)]

    def accepted(self) -> set[UUID]:
        return {c for status, c in self.answers if status in (200, 201, 202) and c is not None}


@pytest.fixture
def scaled_out(stack):
    local = LocalStack()
    names = [instance_name(s, n) for s, n in ADDED] + [JOINING]
    try:
        with ThreadPoolExecutor(len(ADDED)) as starting:  # at once: each mostly waits to be ready
            for started in [starting.submit(instances.start, local, stack, service, n) for service, n in ADDED]:
                started.result()
        yield local
    except BaseException:
        instances.print_logs(local, ["promoter", *names], 40)
        raise
    finally:
        instances.stop_added(local, stack, names)


async def write(api: httpx.AsyncClient, model: str, burst: Burst) -> None:
    key = uuid4().hex
    response = await api.post(f"/v1/models/{model}/versions", headers={"Idempotency-Key": key},
                              files={"file": ("model.bin", f"{model}/{key}".encode())}, data={"run_id": key})
    command_id = response.json().get("command_id") if response.status_code < 300 else None
    burst.answers.append((response.status_code, UUID(command_id) if command_id else None))


async def writer(url: str, w: int, burst: Burst) -> None:
    """Registrations one after another, a fresh connection each (so the proxy
    spreads them over the registrars), one subject per writer (the per-subject
    rate limit is not what is under test)."""
    no_keep_alive = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, headers=bearer(f"writer-{w}", "publisher"), timeout=120,
                                 limits=no_keep_alive) as api:
        while burst.started < WRITES:
            burst.started += 1
            await write(api, burst.models[burst.started % MODELS], burst)


async def when_written(burst: Burst, share: float) -> None:
    while len(burst.answers) < WRITES * share:
        await asyncio.sleep(0.05)


async def rebalance_mid_burst(local: LocalStack, stack, burst: Burst) -> None:
    await when_written(burst, 1 / 3)
    services.kill(KILLED, local)
    await when_written(burst, 1 / 2)
    await asyncio.to_thread(instances.start, local, stack, "promoter", 4)


async def wait_for_outcomes(stack, command_ids: set[UUID], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=stack.url("projector"), headers=bearer("test-harness", "reader"),
                                 timeout=60) as projector:
        for command_id in command_ids:
            while (await projector.get(f"/v1/commands/{command_id}", params={"wait": 5})).status_code != 200:
                assert time.monotonic() < deadline, f"no outcome for {command_id}"


async def assert_whole(engines, models: list[str], accepted: set[UUID]) -> None:
    """One outcome per command, gapless verified chains, read models equal a
    rebuild, audit rows equal the log."""
    after_last, events = await committed_data_offsets(engines)
    ours = [e for e in events if e.model in set(models)]
    closing = Counter(e.command_id for e in ours if e.closes_decision)
    assert {c: closing[c] for c in accepted if closing[c] != 1} == {}, "commands without exactly one outcome"
    assert [c for c, n in closing.items() if n > 1] == [], "a command decided twice"
    chains = defaultdict(list)
    for event in ours:
        chains[event.model].append(event)
    for model, chain in chains.items():
        assert [e.seq for e in chain] == list(range(1, len(chain) + 1)), f"{model}: seq out of order, gap or repeat"
        assert first_broken_link(chain) is None, f"{model}: broken chain"
    await assert_read_side_equals_the_log(engines, after_last, events)


async def test_a_scaled_out_stack_rebalanced_mid_burst_decides_every_write_once_and_stays_exact(
        engines, stack, scaled_out):
    local, burst = scaled_out, Burst()
    registrars = [("127.0.0.1", instances.ports_of(stack, "registrar", n).registrar_port) for n in (1, 2)]
    promoters = {instance_name("promoter", n): instances.ports_of(stack, "promoter", n).url("promoter")
                 for n in (1, 2, 3)}
    print("promoters at start", await wait_for_shares(promoters, split_among_all, "split among three"))
    proxy = RoundRobinProxy(registrars)
    async with proxy as url:
        await asyncio.gather(rebalance_mid_burst(local, stack, burst),
                             *(writer(url, w, burst) for w in range(WRITERS)))
    statuses = Counter(status for status, _ in burst.answers)
    print(f"{len(burst.answers)} writes through the proxy: {dict(statuses)}; per registrar {dict(proxy.served)}")
    assert set(statuses) <= {200, 201, 202}, statuses
    assert len(proxy.served) == 2, "both registrars took writes"

    del promoters[KILLED]
    promoters[JOINING] = instances.ports_of(stack, "promoter", 4).url("promoter")
    print("promoters after", await wait_for_shares(promoters, split_among_all, "split among the three alive"))
    await wait_for_outcomes(stack, burst.accepted())
    await assert_whole(engines, burst.models, burst.accepted())
