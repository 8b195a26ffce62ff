"""The artifact store (SeaweedFS's S3 gateway and the volumes behind it) is
SIGKILLed in the middle of a burst of uploads through the registrar and
restarted a while later. Meanwhile uploads answer 503 with Retry-After, never
500, and nothing half-registered remains: no command is published without its
artifact stored. Uploads succeed once S3 is back, every accepted one has
exactly one outcome, and the orphan reconciler removes what no version uses
and nothing else."""

import asyncio
import hashlib
from datetime import timedelta
from uuid import uuid4

import httpx
import pytest

from modelog_contract.codec import decode_command
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.adapters.s3 import ArtifactStore
from modelog_platform.settings import COMMANDS_TOPIC
from registrar.reconciler import projector_references, reconcile
from tests.e2e.helpers import bearer
from tests.fault.engine_faults import (
    Writes,
    assert_whole_after_the_fault,
    log_events_of,
    outage_mid_burst,
    wait_for_outcomes,
    writer,
)

pytestmark = pytest.mark.engines

WRITERS = 4
MODELS = 8
ACCEPTED_BEFORE_KILL = 30
DOWN_S = 15
ACCEPTED_AFTER = 30


def digest_of(answer) -> str:
    """The sha256 of the bytes the writer uploaded for this answer (engine_faults.register)."""
    return hashlib.sha256(f"{answer.model}/{answer.key}".encode()).hexdigest()


async def test_s3_down_mid_burst_answers_503_and_registers_nothing_without_its_artifact(stack, engines):
    run = uuid4().hex[:6]
    models = [f"s3-{run}-{m:02d}" for m in range(MODELS)]
    writes = Writes()
    writers = [asyncio.create_task(writer(stack.url("registrar"), f"s3-writer-{run}-{i}", models, writes))
               for i in range(WRITERS)]
    try:
        await outage_mid_burst(writes, "seaweedfs", ACCEPTED_BEFORE_KILL, DOWN_S, ACCEPTED_AFTER)
    finally:
        writes.stop = True
        await asyncio.gather(*writers, return_exceptions=True)
    print("answers by phase:", writes.summary())

    assert not [a for a in writes.answers if a.status not in (200, 201, 202, 503)], writes.summary()
    refused = [a for a in writes.answers if a.status == 503]
    assert {a.code for a in refused} <= {"artifact_store_unavailable"}, writes.summary()
    assert all(a.retry_after for a in refused), refused[:3]
    assert sum(1 for a in writes.in_phase("down") if a.status == 503) >= WRITERS, writes.summary()

    # Every registration on the log names bytes that are stored; none of a refused upload.
    store = ArtifactStore(engines)
    keys = {m.encode() for m in models}
    published = [decode_command(r.value) for r in await read_committed(engines, COMMANDS_TOPIC) if r.key in keys]
    registered = {c.artifact.sha256 for c in published if c.type == "RegisterVersion"}
    assert not registered & {digest_of(a) for a in refused}, "a refused upload's command was published"
    missing = [d for d in registered if not await store.exists(d)]
    assert not missing, f"commands published without their artifact: {missing[:5]}"

    accepted = {a.command_id for a in writes.accepted() if a.command_id}
    await wait_for_outcomes(stack.url("projector"), accepted)
    await assert_whole_after_the_fault(engines, models, accepted)

    # The reconciler, with no grace: an object no version uses goes, every version's stays.
    orphan = f"orphan {run}".encode()
    await store.put_bytes(orphan, hashlib.sha256(orphan).hexdigest())
    async with httpx.AsyncClient(base_url=stack.url("projector"), headers=bearer("test-harness", "reader"),
                                 timeout=60) as projector:
        is_referenced = projector_references(projector)
        result = await reconcile(store, is_referenced, timedelta(0))
        assert hashlib.sha256(orphan).hexdigest() in result.removed
        assert not [d for d in result.removed if await is_referenced(d)]
    versions = [e.payload.artifact.sha256 for e in await log_events_of(engines, models) if e.type == "VersionRegistered"]
    assert versions and all([await store.exists(d) for d in versions])
