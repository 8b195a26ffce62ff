"""Least privilege on the real broker: no one reaches Kafka without TLS and a
SCRAM principal, and each service's principal may do what its service does,
nothing more (see modelog_platform.engines.kafka.service_acls)."""

from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.engines.secrets import LocalSecrets
from modelog_platform.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    EngineEndpoints,
    LocalStack,
    StackHome,
)

pytestmark = pytest.mark.engines

TOPIC_AUTHORIZATION_FAILED = 29
FORGED = b'{"type": "VersionPromoted", "forged": true}'


def as_principal(engines: EngineEndpoints, principal: str, password: str | None = None) -> EngineEndpoints:
    """The test stack's endpoints, connecting as `principal` (with its own
    password unless told another)."""
    own = LocalSecrets(StackHome().home).password("kafka", principal)
    return engines.model_copy(update={"kafka_username": principal, "kafka_password_file": None,
                                      "kafka_password": SecretStr(password or own)})


async def started(client):
    await client.start()
    return client


async def refused_at_start(client) -> None:
    with pytest.raises(KafkaConnectionError):
        await client.start()
    await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())


async def test_a_client_without_credentials_cannot_even_connect(engines):
    # Plaintext to the broker's port: no TLS handshake, no answer.
    await refused_at_start(AIOKafkaProducer(bootstrap_servers=engines.kafka_bootstrap, request_timeout_ms=5000))
    # TLS, trusting the right CA, but no SASL: the listener takes no unauthenticated client.
    ca = create_ssl_context(cafile=str(engines.kafka_ca()))
    await refused_at_start(AIOKafkaProducer(bootstrap_servers=engines.kafka_bootstrap, security_protocol="SSL",
                                            ssl_context=ca, request_timeout_ms=5000))


async def test_a_wrong_password_is_refused(engines):
    wrong = as_principal(engines, "promoter", password="not-the-promoters-password")
    await refused_at_start(AIOKafkaProducer(**kafka_connection(wrong), request_timeout_ms=5000))


async def test_the_controller_listener_takes_no_client_principal(engines):
    """The controller's port is on loopback too, but it authenticates the broker
    alone: even the admin's SCRAM credentials are refused there."""
    controller = engines.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{LocalStack().kafka_controller_port}"})
    await refused_at_start(AIOKafkaAdminClient(**kafka_connection(controller), request_timeout_ms=5000))
    # Its mechanism with the admin's name and password: not the one user it knows.
    plain = {**kafka_connection(controller), "sasl_mechanism": "PLAIN"}
    await refused_at_start(AIOKafkaAdminClient(**plain, request_timeout_ms=5000))


@pytest.mark.parametrize("principal", ["registrar", "projector", "auditor", "publisher"])
async def test_only_the_promoter_may_write_events(engines, principal):
    producer = await started(AIOKafkaProducer(**kafka_connection(as_principal(engines, principal))))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(EVENTS_TOPIC, FORGED, key=b"forged")
    finally:
        await producer.stop()


async def test_the_promoter_writes_events_in_transactions_under_its_own_ids(engines):
    promoter = as_principal(engines, "promoter")
    producer = await started(AIOKafkaProducer(**kafka_connection(promoter), enable_idempotence=True, acks="all",
                                              transactional_id=f"modelog-promoter-test-{uuid4().hex[:8]}"))
    try:
        await producer.begin_transaction()
        # Accepted by the broker; aborted, so no reader of the log ever sees it.
        await producer.send_and_wait(EVENTS_TOPIC, FORGED, key=b"acl-test")
        await producer.abort_transaction()
    finally:
        await producer.stop()
    # Another prefix is another writer's: the promoter may not take it over.
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await AIOKafkaProducer(**kafka_connection(promoter), transactional_id=f"someone-else-{uuid4().hex[:8]}").start()


async def test_the_registrar_reads_nothing(engines):
    # That it writes commands and denials, the end-to-end suites show: the
    # registrar there runs as this principal.
    registrar = as_principal(engines, "registrar")
    # modelog's read path asks which partitions the topic has: not even that.
    with pytest.raises(LookupError, match=f"Kafka error {TOPIC_AUTHORIZATION_FAILED}"):
        await read_committed(registrar, EVENTS_TOPIC)
    consumer = await started(AIOKafkaConsumer(**kafka_connection(registrar), enable_auto_commit=False))
    try:
        assert EVENTS_TOPIC not in await consumer.topics()
    finally:
        await consumer.stop()
    admin = await started(AIOKafkaAdminClient(**kafka_connection(registrar)))
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            await admin.list_consumer_group_offsets("modelog-promoter")
    finally:
        await admin.close()


@pytest.mark.parametrize("principal", ["promoter", "registrar", "projector", "auditor", "publisher"])
async def test_no_one_but_admin_deletes_a_topic(engines, principal):
    admin = await started(AIOKafkaAdminClient(**kafka_connection(as_principal(engines, principal))))
    try:
        response = await admin.delete_topics([EVENTS_TOPIC, COMMANDS_TOPIC])
        assert {code for _, code, *_ in response.topic_error_codes} == {TOPIC_AUTHORIZATION_FAILED}
    finally:
        await admin.close()
    admin = await started(AIOKafkaAdminClient(**kafka_connection(engines)))
    try:
        assert {EVENTS_TOPIC, COMMANDS_TOPIC} <= set(await admin.list_topics())
    finally:
        await admin.close()


async def test_a_reader_cannot_join_another_services_group(engines):
    projector = as_principal(engines, "projector")
    theirs = AIOKafkaConsumer(EVENTS_TOPIC, **kafka_connection(projector), group_id="modelog-promoter",
                              enable_auto_commit=False)
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            await theirs.start()
    finally:
        await theirs.stop()
