"""`modelog projections rebuild --switch`: the read models are replayed from
the log and put in place of the live ones (blue/green) while writes go on.
A damaged read model is repaired, no write answered meanwhile is lost, and
the projector carries on into the new tables."""

import asyncio
import threading

import pytest

from modelog_contract.domain.commands import SetTag
from modelog_platform import services
from modelog_platform.adapters.commands import CommandPublisher
from modelog_platform.adapters.postgres import connect
from modelog_platform.identity.dev import signed
from modelog_platform.settings import LocalStack
from tests.e2e.helpers import make, modelog, unique, wait_for_timeline

pytestmark = pytest.mark.engines


def sql(engines, query: str, *args):
    async def run():
        conn = await connect(engines.postgres())
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()
    return asyncio.run(run())


def test_a_switch_repairs_a_damaged_read_model_while_writes_go_on(engines, stack, client, trained_model):
    model = unique("switched")
    client.register_version(model, trained_model, description="fraud scores")
    # What a botched hand edit or a buggy migration leaves behind.
    sql(engines, "UPDATE model_versions SET description = 'damaged' WHERE model = $1", model)

    answered: list[int] = []
    stop = threading.Event()

    def keep_writing():
        while not stop.is_set():
            client.set_tag(model, f"during-{len(answered)}", "written")
            answered.append(len(answered))

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        switched = modelog("projections", "rebuild", "--switch")
    finally:
        stop.set()
        writer.join()

    assert switched.exit_code == 0, switched.output
    assert "switched" in switched.output and "model_versions" in switched.output  # it saw the damage
    assert len(answered) > 3, "writes should have gone on during the switch"
    assert client.get_version(model, 1)["description"] == "fraud scores"
    tags = client.get_model(model)["tags"]
    assert {f"during-{i}" for i in answered} <= set(tags), "a write answered during the switch is missing"

    # The projector goes on projecting, into the tables it was switched to.
    client.set_tag(model, "after", "switch")
    assert client.get_model(model)["tags"]["after"] == "switch"
    retired = sql(engines, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'retired_%'"
                           " ORDER BY nspname DESC LIMIT 1")[0]["nspname"]
    assert sql(engines, f'SELECT description FROM "{retired}".model_versions WHERE model = $1',
               model)[0]["description"] == "damaged"

    check = modelog("projections", "rebuild")
    assert check.exit_code == 0 and "match" in check.output, check.output

    # The retired read models are listed, and dropped by name; nothing else is.
    assert retired in modelog("projections", "retired").output
    assert modelog("projections", "drop-retired", "public").exit_code == 2
    dropped = modelog("projections", "drop-retired", retired)
    assert dropped.exit_code == 0, dropped.output
    assert retired not in modelog("projections", "retired").output
    assert not sql(engines, "SELECT 1 FROM pg_namespace WHERE nspname = $1", retired)


def test_a_switch_ahead_of_a_stopped_projector_moves_its_checkpoints_on(engines, stack, client, trained_model):
    """The replay reads events the projector has not applied yet: the switch
    hands the projector the replay's positions, and the restarted projector
    applies none of those events twice (a second VersionRegistered would break
    the versions' primary key; a second outcome would list its event twice)."""
    model = unique("ahead")
    client.register_version(model, trained_model)
    local = LocalStack()
    services.stop("projector", local)
    try:
        commands = [make(SetTag, model, key=f"while-stopped-{i}", value="x") for i in range(5)]
        asyncio.run(publish(engines, commands))
        wait_for_timeline(stack.url("auditor"), model, 2 + len(commands))  # in the log, not projected
        switched = modelog("projections", "rebuild", "--switch")
        assert switched.exit_code == 0, switched.output
    finally:
        services.start("projector", local)
        services.wait_ready("projector", local, stack)

    assert {f"while-stopped-{i}" for i in range(5)} <= set(client.get_model(model)["tags"])
    outcome = sql(engines, "SELECT events FROM command_outcomes WHERE command_id = $1", commands[0].command_id)
    assert outcome[0]["events"] == ["TagSet"]
    client.set_tag(model, "after", "restart")
    check = modelog("projections", "rebuild")
    assert check.exit_code == 0 and "match" in check.output, check.output


async def publish(engines, commands) -> None:
    publisher = CommandPublisher(engines, sign=signed)
    await publisher.start()
    try:
        for command in commands:
            await publisher.publish(command)
    finally:
        await publisher.stop()
