"""The Kafka broker is SIGKILLed in the middle of a burst of writes through the
registrar and restarted a while later. While it is down every write answers
503 with Retry-After, never 500; afterwards every write that was answered
2xx/202 has exactly one outcome, a 503'd write retried with its
Idempotency-Key acts once, and the log, the read models and the audit store
agree. A registration through the SDK begun while the broker is down is asked
again by the SDK itself until the broker is back, and registers one version.

(test_promoter_killed.py kills the promoter, not the broker; this is the
broker's own scenario, through the registrar's HTTP API as callers see it.)"""

import asyncio
import logging
from uuid import UUID, uuid4

import pytest

from modelog.client import Client
from tests.e2e.helpers import token_for
from tests.fault.engine_faults import (
    Writes,
    assert_whole_after_the_fault,
    log_events_of,
    outage_mid_burst,
    retry_until_decided,
    wait_for,
    wait_for_outcomes,
    writer,
)

pytestmark = pytest.mark.engines

WRITERS = 6
MODELS = 12
ACCEPTED_BEFORE_KILL = 60
DOWN_S = 25            # long enough for writes begun after the kill to be answered
ACCEPTED_AFTER = 60


async def sdk_registration_begun_while_down(stack, model: str, artifact, writes: Writes) -> dict:
    """The SDK's register_version, called once the broker is gone, with time
    enough to ask again until it is back."""
    await wait_for(writes, lambda: writes.phase == "down", 180, "the broker never went down")
    await asyncio.sleep(1)  # the phase is named just before the kill: let the kill land first
    client = Client(stack.url("registrar"), stack.url("projector"), token=token_for("broker-sdk", "publisher"),
                    retry_for_s=240)
    with client:
        return await asyncio.to_thread(client.register_version, model, artifact, run_id=artifact.name)


async def test_broker_killed_mid_burst_answers_503_and_decides_every_accepted_write_once(
        stack, engines, tmp_path, caplog):
    run = uuid4().hex[:6]
    models = [f"broker-{run}-{m:02d}" for m in range(MODELS)]
    writes = Writes()
    writers = [asyncio.create_task(writer(stack.url("registrar"), f"broker-writer-{run}-{i}", models, writes))
               for i in range(WRITERS)]
    artifact = tmp_path / f"sdk-{run}.bin"
    artifact.write_bytes(b"registered through the outage")
    caplog.set_level(logging.WARNING, logger="modelog.client")
    through_sdk = asyncio.create_task(sdk_registration_begun_while_down(stack, models[0], artifact, writes))
    try:
        await outage_mid_burst(writes, "kafka", ACCEPTED_BEFORE_KILL, DOWN_S, ACCEPTED_AFTER)
        sdk = await through_sdk
    finally:
        writes.stop = True
        await asyncio.gather(*writers, through_sdk, return_exceptions=True)
    print("answers by phase:", writes.summary(), "the SDK's registration:", sdk)
    asked_again = [r.getMessage() for r in caplog.records if "the registry is unavailable" in r.getMessage()]
    assert any("503 log_unavailable" in m for m in asked_again), asked_again
    assert sdk["status"] == "accepted" and sdk["version"] >= 1, sdk
    sdk_versions = [e for e in await log_events_of(engines, [models[0]])
                    if e.type == "VersionRegistered" and e.payload.run_id == artifact.name]
    assert len(sdk_versions) == 1, f"the SDK's registration made {len(sdk_versions)} versions"

    failed = [a for a in writes.answers if a.status not in (200, 201, 202, 503)]
    assert not failed, f"answers other than 2xx/202/503: {failed[:5]}; {writes.summary()}"
    refused = [a for a in writes.answers if a.status == 503]
    assert all(a.retry_after and int(a.retry_after) > 0 for a in refused), refused[:5]
    started_while_down = writes.in_phase("down")
    # Writes begun once the broker was gone: refused, never hanging past the wait.
    assert sum(1 for a in started_while_down if a.status == 503) >= WRITERS, writes.summary()
    assert all(a.code == "log_unavailable" for a in refused), {a.code for a in refused}

    retried = await retry_until_decided(stack.url("registrar"), refused, lambda a: a.key.rsplit("-", 1)[0])
    accepted = {a.command_id for a in writes.accepted() + retried if a.command_id} | {UUID(sdk["command_id"])}
    await wait_for_outcomes(stack.url("projector"), accepted)
    await assert_whole_after_the_fault(engines, models, accepted)
