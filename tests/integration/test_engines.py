"""The local engines from nothing to down, on a home and ports of their own.

Runs beside (not against) the default stack other tests use: its own home
under tmp_path and ports of its own.
Tests run in file order: up, warm up, use, down.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.s3 import s3_client
from modelog_platform.engines import down, status, up
from modelog_platform.engines.kafka import Kafka
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.secrets import LocalSecrets
from modelog_platform.settings import COMMANDS_TOPIC, EVENTS_TOPIC, LOCAL_S3_ADMIN, EngineEndpoints, LocalStack, S3Credentials

pytestmark = pytest.mark.engines

# The development environment has the `mlflow` package, so the stack runs a tracking server too.
ENGINES = {"kafka", "postgres", "seaweedfs", "oidc", "mlflow"}
# Moved with the session stack's ports (tests/conftest.py), 1000 above them.
SHIFT = int(os.environ.get("MODELOG_TEST_PORT_SHIFT", "0"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("engines") / "home"
    endpoints = EngineEndpoints(
        kafka_bootstrap=f"127.0.0.1:{22092 + SHIFT}",
        postgres_dsn=f"postgresql://127.0.0.1:{22432 + SHIFT}/modelog",
        s3_endpoint=f"127.0.0.1:{22333 + SHIFT}",
        topic_partitions=3,
    )
    local = LocalStack(
        home=home,
        kafka_controller_port=22093 + SHIFT,
        seaweedfs_master_port=22334 + SHIFT,
        seaweedfs_volume_port=22335 + SHIFT,
        seaweedfs_filer_port=22336 + SHIFT,
        seaweedfs_master_grpc_port=22337 + SHIFT,
        seaweedfs_volume_grpc_port=22338 + SHIFT,
        seaweedfs_filer_grpc_port=22339 + SHIFT,
        seaweedfs_s3_grpc_port=22340 + SHIFT,
        mlflow_tracking_port=22450 + SHIFT,
        oidc_port=22446 + SHIFT,
    )
    try:
        yield endpoints, local
    finally:
        down(local, report=lambda _: None)  # whatever happened, leave nothing running


def kafka_admin(endpoints: EngineEndpoints, local: LocalStack) -> EngineEndpoints:
    """The admin of this stack's Kafka: its home is not the one MODELOG_HOME names."""
    return Kafka().admin_endpoints(Layout(endpoints, local, lambda _: None))


def test_up_from_nothing(stack) -> None:
    endpoints, local = stack
    t0 = time.monotonic()
    result = up(endpoints, local)
    print(f"cold up: {time.monotonic() - t0:.1f}s")
    assert result == {name: "started" for name in ENGINES}
    st = status(endpoints, local)
    assert all(s["running"] and s["pid"] and s["rss_mb"] > 0 for s in st.values()), st


def test_second_up_only_checks(stack) -> None:
    endpoints, local = stack
    pids = {name: s["pid"] for name, s in status(endpoints, local).items()}
    t0 = time.monotonic()
    result = up(endpoints, local)
    elapsed = time.monotonic() - t0
    print(f"warm up: {elapsed:.1f}s")
    assert result == {name: "already running" for name in ENGINES}
    assert {name: s["pid"] for name, s in status(endpoints, local).items()} == pids
    assert elapsed < 15


async def test_topics_as_specified(stack) -> None:
    endpoints, _ = stack
    admin = AIOKafkaAdminClient(**kafka_connection(kafka_admin(*stack)))
    await admin.start()
    try:
        for topic in (COMMANDS_TOPIC, EVENTS_TOPIC):
            [meta] = await admin.describe_topics([topic])
            assert meta["error_code"] == 0
            assert len(meta["partitions"]) == endpoints.topic_partitions
            [resp] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            [resource] = resp.to_object()["resources"]
            configs = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
            assert configs["cleanup.policy"] == "delete"
            assert configs["retention.ms"] == "-1"
    finally:
        await admin.close()


async def _read_until(consumer: AIOKafkaConsumer, last: bytes, timeout: float = 30) -> list[bytes]:
    seen: list[bytes] = []
    deadline = time.monotonic() + timeout
    while last not in seen:
        assert time.monotonic() < deadline, f"did not see {last!r}; saw {seen!r}"
        batches = await consumer.getmany(timeout_ms=500)
        seen += [r.value for records in batches.values() for r in records]
    return seen


async def test_kafka_transactions_read_committed(stack) -> None:
    tag = uuid.uuid4().hex
    committed, aborted, after = (f"{k}-{tag}".encode() for k in ("committed", "aborted", "after"))
    tp = TopicPartition(COMMANDS_TOPIC, 0)

    producer = AIOKafkaProducer(
        **kafka_connection(kafka_admin(*stack)), transactional_id=f"test-engines-{tag}"
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(tp.topic, committed, partition=tp.partition)
        await producer.begin_transaction()
        await producer.send_and_wait(tp.topic, aborted, partition=tp.partition)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(tp.topic, after, partition=tp.partition)
    finally:
        await producer.stop()

    async def read(isolation: str) -> list[bytes]:
        consumer = AIOKafkaConsumer(
            **kafka_connection(kafka_admin(*stack)),
            isolation_level=isolation,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            return await _read_until(consumer, after)
        finally:
            await consumer.stop()

    seen = await read("read_committed")
    assert committed in seen and aborted not in seen
    assert seen.index(committed) < seen.index(after)
    # The aborted record really was written: only the isolation level hides it.
    assert aborted in await read("read_uncommitted")


async def test_s3_put_stat_get(stack) -> None:
    endpoints, local = stack
    admin = S3Credentials(LOCAL_S3_ADMIN, LocalSecrets(local.home).password("seaweedfs", LOCAL_S3_ADMIN))
    client = s3_client(endpoints, admin)
    payload = os.urandom(3 * 1024 * 1024 + 17)
    digest = hashlib.sha256(payload).hexdigest()
    name = f"test/{uuid.uuid4().hex}.bin"

    def roundtrip() -> tuple[int, bytes]:
        assert client.bucket_exists(endpoints.artifact_bucket)
        client.put_object(endpoints.artifact_bucket, name, io.BytesIO(payload), len(payload),
                          metadata={"sha256": digest})
        stat = client.stat_object(endpoints.artifact_bucket, name)
        response = client.get_object(endpoints.artifact_bucket, name)
        try:
            return stat.size, response.read()
        finally:
            response.close()
            response.release_conn()

    size, body = await asyncio.to_thread(roundtrip)  # the minio SDK is synchronous
    assert size == len(payload)
    assert hashlib.sha256(body).hexdigest() == digest


def _processes_mentioning(text: str) -> list[tuple[int, str]]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmd:
            found.append((int(entry), cmd))
    return found


def test_down_leaves_nothing(stack) -> None:
    endpoints, local = stack
    pids = [s["pid"] for s in status(endpoints, local).values()]
    down(local)
    assert not any(s["running"] for s in status(endpoints, local).values())
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), pid
    assert _processes_mentioning(str(local.home.resolve())) == []
    assert list((local.home / "run").glob("*.pid")) == []
