"""A Kafka storage formatted before a principal existed gets that principal's
SCRAM user at the next start, as the admin, with its data kept; and only
once: later starts read the marker instead of starting a JVM.

A broker of its own, on a home and ports of its own (away from the session
stack's and test_engines'), formatted with the principals of the stacks
before the sentinel's, then started again as the code stands.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.engines import kafka, kafka_users
from modelog_platform.engines.kafka import PRINCIPALS, Kafka
from modelog_platform.engines.kafka_users import PRINCIPALS_MARKER, UNMARKED_PRINCIPALS, principals_of
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.secrets import LocalSecrets
from modelog_platform.settings import COMMANDS_TOPIC, EngineEndpoints, LocalStack

pytestmark = pytest.mark.engines

SHIFT = int(os.environ.get("MODELOG_TEST_PORT_SHIFT", "0"))


@pytest.fixture
def stack():
    """A layout of its own, and the progress lines it reported."""
    root = Path(tempfile.mkdtemp(prefix="modelog-scram-upgrade-"))
    lines: list[str] = []
    layout = Layout(EngineEndpoints(kafka_bootstrap=f"127.0.0.1:{23092 + SHIFT}", topic_partitions=1),
                    LocalStack(home=root / "home", kafka_controller_port=23093 + SHIFT), lines.append)
    try:
        yield layout, lines
    finally:
        Kafka().stop(layout)
        shutil.rmtree(root, ignore_errors=True)


def start(lay: Layout) -> str:
    engine = Kafka()
    state, pid = engine.ensure_started(lay)
    engine.wait_ready(lay, pid)
    return state


def as_principal(lay: Layout, principal: str) -> EngineEndpoints:
    """Connected as `principal` the way `modelog up` starts its service."""
    env = Kafka().service_env(lay, principal)
    return EngineEndpoints(kafka_bootstrap=lay.endpoints.kafka_bootstrap,
                           **{name.removeprefix("MODELOG_").lower(): value for name, value in env.items()})


async def connects(endpoints: EngineEndpoints) -> bool:
    admin = AIOKafkaAdminClient(**kafka_connection(endpoints), request_timeout_ms=10000)
    try:
        await admin.start()
    except KafkaConnectionError:
        return False
    await admin.close()
    return True


async def publish(endpoints: EngineEndpoints, value: bytes) -> None:
    producer = AIOKafkaProducer(**kafka_connection(endpoints))
    await producer.start()
    try:
        await producer.send_and_wait(COMMANDS_TOPIC, value, partition=0)
    finally:
        await producer.stop()


async def log_holds(endpoints: EngineEndpoints, value: bytes) -> bool:
    consumer = AIOKafkaConsumer(**kafka_connection(endpoints), enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(COMMANDS_TOPIC, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        seen: list[bytes] = []
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=1000)
            seen += [record.value for record in batches.get(tp, [])]
        return value in seen
    finally:
        await consumer.stop()


@pytest.fixture
def config_commands(monkeypatch) -> list[list[str]]:
    """The command lines of every ConfigCommand run, which still runs."""
    commands: list[list[str]] = []
    run = subprocess.run

    def recorded(args, **kwargs):
        if "kafka.admin.ConfigCommand" in args:
            commands.append(list(args))
        return run(args, **kwargs)

    monkeypatch.setattr(kafka_users.subprocess, "run", recorded)
    return commands


async def test_a_storage_from_before_the_sentinel_gets_its_user_at_the_next_start_and_keeps_its_data(
        stack, monkeypatch, config_commands) -> None:
    lay, reports = stack
    engine, kept = Kafka(), f"kept-{uuid.uuid4().hex}".encode()
    assert set(PRINCIPALS) - set(UNMARKED_PRINCIPALS) == {"sentinel"}

    # Given a storage made, and used, by a stack from before the sentinel and before the marker
    with monkeypatch.context() as old_code:
        old_code.setattr(kafka, "PRINCIPALS", UNMARKED_PRINCIPALS)
        assert start(lay) == "started"
        engine.provision(lay)
    (lay.data("kafka") / PRINCIPALS_MARKER).unlink()
    admin = engine.admin_endpoints(lay)
    await publish(admin, kept)
    engine.stop(lay)

    # When it starts as the code stands: the sentinel is refused until provisioning
    assert start(lay) == "started"
    assert not await connects(as_principal(lay, "sentinel"))
    t0 = time.monotonic()
    engine.provision(lay)
    print(f"provision, adding one SCRAM user: {time.monotonic() - t0:.1f}s")

    # Then the sentinel connects as its service would, the log is as it was,
    # and the marker names every principal
    assert await connects(as_principal(lay, "sentinel"))
    assert await log_holds(admin, kept)
    assert set(principals_of(lay.data("kafka"))) == set(PRINCIPALS)
    assert [command[-1] for command in config_commands] == ["sentinel"]
    passwords = {LocalSecrets(lay.home).password("kafka", principal) for principal in PRINCIPALS}
    assert not any(password in " ".join(command) for command in config_commands for password in passwords)
    assert any("no SCRAM users for sentinel" in line for line in reports)
    assert not list(lay.data("kafka").glob(".scram-*"))  # the files with passwords are gone

    # And a second start adds no one, and runs no ConfigCommand
    assert start(lay) == "already running"
    t0 = time.monotonic()
    engine.provision(lay)
    print(f"provision, nothing to add: {time.monotonic() - t0:.1f}s")
    assert len(config_commands) == 1
