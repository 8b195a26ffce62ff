"""What a pool of busy connections raises when PostgreSQL is SIGKILLed under
it, repeatedly: every error must be one the services wait out
(adapters.postgres.UNAVAILABLE). Anything else becomes a 500 on a read and
ends a projection task, and with it the projector or the auditor.

asyncpg's InternalClientError on a connection the server dropped mid-answer
was such an error; it showed up about twice in ten kills of 20 busy
connections, so this test kills several times."""

import asyncio
from collections import Counter

import httpx
import pytest

from modelog_platform.adapters.postgres import UNAVAILABLE, create_pool
from modelog_platform.settings import EngineEndpoints
from tests.e2e.helpers import bearer
from tests.fault.engine_faults import kill_engine, restart_engines

pytestmark = pytest.mark.engines

KILLS = 4
BUSY = 20  # more than the pool holds: acquirers wait, connect and reconnect as a service's do


async def test_every_error_of_a_pool_across_postgres_kills_is_one_the_services_wait_out(stack, engines):
    pool = await create_pool(EngineEndpoints().postgres())
    errors: Counter[str] = Counter()
    not_waited_out: list[BaseException] = []
    busy = True

    async def work() -> None:
        while busy:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute("SELECT pg_sleep(0.01)")
                    await conn.fetch("SELECT generate_series(1, 2000)")
            except UNAVAILABLE as lost:
                errors[type(lost).__name__] += 1
                await asyncio.sleep(0.05)
            except Exception as other:  # what the services would not wait out
                not_waited_out.append(other)
                await asyncio.sleep(0.05)

    try:
        for _ in range(KILLS):
            workers = [asyncio.create_task(work()) for _ in range(BUSY)]
            await asyncio.sleep(2)
            await asyncio.to_thread(kill_engine, "postgres")
            await asyncio.sleep(2)
            await asyncio.to_thread(restart_engines)
            await asyncio.sleep(2)
            busy = False
            await asyncio.gather(*workers)
            busy = True
    finally:
        await pool.close()
    print("errors waited out:", dict(errors))
    assert not not_waited_out, [repr(e) for e in not_waited_out]
    assert errors, "no kill reached a connection: the test did not test anything"
    await read_side_serving_again(stack)


async def read_side_serving_again(stack, timeout_s: float = 120) -> None:
    """The services lived through the kills: each answers /readyz again."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient(headers=bearer("pg-kills", "reader"), timeout=10) as http:
        for service in ("projector", "auditor", "registrar"):
            while (await http.get(f"{stack.url(service)}/readyz")).status_code != 200:
                assert asyncio.get_running_loop().time() < deadline, f"{service} not ready after the kills"
                await asyncio.sleep(0.5)
