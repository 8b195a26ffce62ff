"""PostgreSQL is SIGKILLed in the middle of a burst of writes through the
registrar, with readers asking all the while, and restarted a while later.
Meanwhile reads answer 503 with Retry-After (never 500) and writes 202: the
log takes them, their outcomes come later. The projector and the auditor wait
the outage out in the same processes and resume from their stored offsets:
afterwards every accepted write has exactly one outcome, the read models equal
a rebuild and the audit store equals the log."""

import asyncio
from collections import Counter, defaultdict
from uuid import uuid4

import httpx
import pytest

from modelog_platform import services
from modelog_platform.settings import LocalStack
from tests.e2e.helpers import bearer
from tests.fault.engine_faults import (
    Writes,
    assert_whole_after_the_fault,
    outage_mid_burst,
    wait_for_outcomes,
    writer,
)

pytestmark = pytest.mark.engines

WRITERS = 4
MODELS = 8
ACCEPTED_BEFORE_KILL = 40
DOWN_S = 15
ACCEPTED_AFTER = 40


async def reader(stack, models: list[str], writes: Writes, seen: dict) -> None:
    """Serving lookups at the projector and model reads through the registrar."""
    headers = bearer("pg-fault-reader", "reader")
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        i = 0
        while not writes.stop:
            model = models[i % len(models)]
            for url in (f"{stack.url('projector')}/v1/models/{model}/stages/None",
                        f"{stack.url('registrar')}/v1/models/{model}"):
                phase = writes.phase
                try:
                    response = await http.get(url)
                except httpx.RemoteProtocolError:
                    # A kept-alive connection the server closed as this request
                    # went out on it: a GET is asked again, as urllib3 would.
                    seen[phase]["reconnected"] += 1
                    response = await http.get(url)
                seen[phase][response.status_code] += 1
                if response.status_code == 503:
                    assert response.headers.get("retry-after"), (url, response.text)
                    seen.setdefault("codes", set()).add(response.json()["error"]["code"])
            i += 1
            await asyncio.sleep(0.05)


async def test_postgres_killed_mid_burst_reads_answer_503_and_the_read_side_resumes_exactly(stack, engines):
    run = uuid4().hex[:6]
    models = [f"pg-{run}-{m:02d}" for m in range(MODELS)]
    local = LocalStack()
    read_side = {s: services.running_pid(local, s) for s in ("projector", "auditor")}
    writes, reads = Writes(), defaultdict(Counter)
    tasks = [asyncio.create_task(writer(stack.url("registrar"), f"pg-writer-{run}-{i}", models, writes))
             for i in range(WRITERS)] + [asyncio.create_task(reader(stack, models, writes, reads))]
    try:
        await outage_mid_burst(writes, "postgres", ACCEPTED_BEFORE_KILL, DOWN_S, ACCEPTED_AFTER)
    finally:
        writes.stop = True
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    print("writes by phase:", writes.summary(), "reads by phase:", dict(reads))
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes

    # The log takes writes; their outcomes cannot be read yet: pending, never refused.
    assert not [a for a in writes.answers if a.status not in (200, 201, 202)], writes.summary()
    assert any(a.status == 202 for a in writes.in_phase("down")), writes.summary()
    assert set(reads["down"]) <= {200, 404, 503} and reads["down"][503] > 0, dict(reads)
    assert not any(500 in counts for counts in reads.values() if isinstance(counts, Counter)), dict(reads)
    assert reads.get("codes", set()) <= {"database_unavailable"}, reads.get("codes")
    # Waited out in the same processes: no restart hid a crash.
    assert {s: services.running_pid(local, s) for s in read_side} == read_side

    accepted = {a.command_id for a in writes.accepted() if a.command_id}
    await wait_for_outcomes(stack.url("projector"), accepted)
    await assert_whole_after_the_fault(engines, models, accepted)
