"""A request waiting for a command's outcome is answered when the projection
commits it, not when it next looks: a projector instance whose look-again
interval is an hour still answers within seconds, whichever instance
projected the command (the commit's NOTIFY reaches every instance). And a
write through the registrar carries the model's state in its answer."""

import asyncio

import httpx
import pytest

from modelog_contract.domain.commands import CreateModel, RegisterVersion, SetAlias, SetTag
from modelog_contract.domain.types import Artifact
from modelog_platform import services
from modelog_platform.adapters.commands import CommandPublisher
from modelog_platform.engines import procs
from modelog_platform.identity.dev import signed
from modelog_platform.settings import LocalStack
from tests.e2e.helpers import bearer, decided, make, unique

pytestmark = pytest.mark.engines

LISTENER = "projector-listens"
AN_HOUR_S = "3600"


@pytest.fixture
def listening_projector(stack):
    """A second projector instance that looks again only once an hour: its URL."""
    local = LocalStack()
    ports = stack.model_copy(update={"projector_port": stack.projector_port + 60})
    try:
        services.start(LISTENER, local, env={"MODELOG_PROJECTOR_PORT": str(ports.projector_port),
                                             "MODELOG_PROJECTOR_OUTCOME_POLL_S": AN_HOUR_S})
        services.wait_ready(LISTENER, local, ports, timeout_s=120)
        yield ports.url("projector")
    except BaseException:
        print(f"--- {LISTENER} (last lines) ---\n{procs.log_tail(services.log_path(local, LISTENER), 60)}")
        raise
    finally:
        services.stop(LISTENER, local)


async def wait_then_publish(engines, url: str, command) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, headers=bearer("test-harness", "reader"), timeout=90) as projector:
        waiting = asyncio.create_task(projector.get(f"/v1/commands/{command.command_id}", params={"wait": 60}))
        await asyncio.sleep(1)  # the request has looked once and found nothing: now it waits
        assert not waiting.done()
        publisher = CommandPublisher(engines, sign=signed)
        await publisher.start()
        try:
            await publisher.publish(command)
        finally:
            await publisher.stop()
        return await asyncio.wait_for(waiting, 45)  # far less than the hour between looks


def test_a_waiting_request_is_answered_by_the_commit_not_by_a_poll(engines, stack, listening_projector):
    model = unique("pushed")
    asyncio.run(decided(engines, stack, make(CreateModel, model)))
    for _ in range(3):  # whichever instance owns the model's partition, each answer is pushed
        command = make(SetTag, model, key="k", value=unique("v"))
        response = asyncio.run(wait_then_publish(engines, listening_projector, command))
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] and response.json()["complete"]


def test_an_outcome_asked_with_state_carries_the_model_as_it_is_now(engines, stack):
    model = unique("with-state")
    asyncio.run(decided(engines, stack, make(CreateModel, model)))
    command = make(SetTag, model, key="stage-owner", value="alice")
    asyncio.run(decided(engines, stack, command))
    with httpx.Client(base_url=stack.url("projector"), headers=bearer("test-harness", "reader")) as projector:
        with_state = projector.get(f"/v1/commands/{command.command_id}", params={"state": "true"}).json()
        model_now = projector.get(f"/v1/models/{model}").json()
        plain = projector.get(f"/v1/commands/{command.command_id}").json()
    assert with_state["state"] == {"model": model_now}
    assert model_now["tags"]["stage-owner"] == "alice"
    assert "state" not in plain


def test_an_outcome_asked_with_state_carries_the_version_it_touched_as_it_is_now(engines, stack):
    model, digest = unique("with-version"), "cd" * 32
    register = make(RegisterVersion, model, artifact=Artifact(uri=f"s3://b/{digest}", sha256=digest, size=1),
                    params={"depth": "4"}, metrics={"auc": 0.91}, tags={"team": "fraud"})
    asyncio.run(decided(engines, stack, register))
    alias = make(SetAlias, model, alias="champion", version=1)
    asyncio.run(decided(engines, stack, alias))
    with httpx.Client(base_url=stack.url("projector"), headers=bearer("test-harness", "reader")) as projector:
        answers = {command.type: projector.get(f"/v1/commands/{command.command_id}", params={"state": "true"}).json()
                   for command in (register, alias)}
        model_now = projector.get(f"/v1/models/{model}").json()
        version_now = projector.get(f"/v1/models/{model}/versions/1").json()
    assert answers["SetAlias"]["state"] == {"model": model_now, "version": version_now}
    assert version_now["aliases"] == ["champion"] and version_now["metrics"] == {"auc": 0.91}
    # The registration's answer is the version as it is now, its alias set since included.
    assert answers["RegisterVersion"]["state"]["version"] == version_now
