"""Two auditors, one seal chain: seals asked of both at once and made every
period while writes go on link into one line, and when the auditor holding
the seal lease is SIGKILLed, the other takes the lease and seals on, the
chain still one (docs/decisions/0012-one-sealer-by-a-postgres-lease.md)."""

import asyncio
import time
from uuid import uuid4

import httpx
import pytest

from modelog_contract.audit.seals import check_seal, check_seal_chain
from modelog_platform import services
from modelog_platform.adapters.seal_store import SealStore, public_key
from modelog_platform.settings import LocalStack
from tests.e2e.helpers import bearer
from tests.fault import instances
from tests.fault.instances import instance_name
from tests.fault.read_side import burst, publish

pytestmark = pytest.mark.engines

AUDITORS = (instance_name("auditor", 1), instance_name("auditor", 2))
SEAL_EVERY_S = "1"
LEASE_LINE = "holds the seal lease"


@pytest.fixture
def two_auditors(stack):
    """The stack's auditor restarted and a second beside it, both sealing every
    second; afterwards the second stopped and the first as the stack runs it.
    Yields their URLs, and where their logs ended before they started."""
    local = LocalStack()
    urls = {instance_name("auditor", n): instances.ports_of(stack, "auditor", n).url("auditor") for n in (1, 2)}
    services.stop("auditor", local)
    offsets = {name: log_size(local, name) for name in AUDITORS}
    try:
        for n in (1, 2):
            instances.start(local, stack, "auditor", n, env={"MODELOG_AUDIT_SEAL_EVERY_S": SEAL_EVERY_S})
        yield urls, offsets
    except BaseException:
        instances.print_logs(local, list(urls))
        raise
    finally:
        for name in urls:
            services.stop(name, local)
        instances.start(local, stack, "auditor", 1)


def log_size(local: LocalStack, name: str) -> int:
    path = services.log_path(local, name)
    return path.stat().st_size if path.exists() else 0


def lease_taken_since(local: LocalStack, name: str, offset: int) -> bool:
    with services.log_path(local, name).open("rb") as log:
        log.seek(offset)
        return LEASE_LINE.encode() in log.read()


async def wait_for_lease(local: LocalStack, names, offsets: dict[str, int]) -> str:
    """The auditor among `names` that took the lease since `offsets`."""
    deadline = time.monotonic() + 60
    while not (holders := [n for n in names if lease_taken_since(local, n, offsets[n])]):
        assert time.monotonic() < deadline, f"none of {names} took the seal lease"
        await asyncio.sleep(0.25)
    assert len(holders) == 1, f"more than one auditor took the lease: {holders}"
    return holders[0]


def seal_count(store: SealStore) -> int:
    return len(store.all().seals)


async def wait_for_more_seals(store: SealStore, than: int, more: int) -> int:
    deadline = time.monotonic() + 60
    while (now := await asyncio.to_thread(seal_count, store)) < than + more:
        assert time.monotonic() < deadline, f"{now - than} new seals in 60s, expected {more}"
        await asyncio.sleep(0.5)
    return now


async def ask_for_seals(urls) -> None:
    """A seal asked of every auditor at the same moment."""
    async with httpx.AsyncClient(headers=bearer("ines", "auditor"), timeout=60) as client:
        answers = await asyncio.gather(*(client.post(f"{url}/v1/audit/seals") for url in urls))
    assert [a.status_code for a in answers] == [201] * len(urls), [a.text for a in answers]


def assert_one_chain(store: SealStore) -> None:
    stored = store.all()
    key = public_key()
    breaks = stored.breaks + check_seal_chain(stored.seals)
    breaks += [b for seal in stored.seals for b in check_seal(seal, key)]
    assert breaks == [], breaks
    assert [s.number for s in stored.seals] == list(range(1, len(stored.seals) + 1))


async def test_two_auditors_seal_one_chain_and_the_other_takes_over_when_the_sealer_dies(engines, two_auditors):
    (urls, offsets), local, store = two_auditors, LocalStack(), SealStore(engines)
    writes = asyncio.create_task(publish(engines, burst(uuid4().hex[:6], models=6, versions=10)))
    for _ in range(5):
        await ask_for_seals(list(urls.values()))
    await writes
    sealer = await wait_for_lease(local, AUDITORS, offsets)
    [survivor] = [name for name in AUDITORS if name != sealer]
    sealed = await wait_for_more_seals(store, await asyncio.to_thread(seal_count, store), 2)
    assert_one_chain(store)

    offsets[survivor] = log_size(local, survivor)
    services.kill(sealer, local)
    assert await wait_for_lease(local, [survivor], offsets) == survivor
    after = await wait_for_more_seals(store, sealed, 3)
    assert_one_chain(store)
    print(f"{sealer} sealed, then was killed; {survivor} took the lease; {after} seals, one chain")
