"""What the end-to-end tests share: unique names, commands straight to Kafka,
and the check that refused input wrote nothing."""

import asyncio
import hashlib
import time
from datetime import datetime, timezone
from uuid import uuid4

import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from modelog.cli import with_installed_commands
from modelog_contract.domain.types import Actor
from modelog_platform.adapters.commands import CommandPublisher
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.adapters.s3 import ArtifactStore
from modelog_platform.identity.dev import DevIssuer, signed
from modelog_platform.settings import COMMANDS_TOPIC


def unique(name: str) -> str:
    return f"{name}-{uuid4().hex[:8]}"


def assert_nothing_written(engines, model: str, data: bytes | None = None) -> None:
    """No command for `model`, and, where the request carried bytes, no object of them."""
    if data:  # no bytes, no object of its own: an empty one may be another version's (a tree's empty file)
        assert not asyncio.run(ArtifactStore(engines).exists(hashlib.sha256(data).hexdigest()))
    commands = asyncio.run(read_committed(engines, COMMANDS_TOPIC))
    assert not [r for r in commands if r.key == model.encode()]


async def decided(engines, stack, command, token: str | None = None, sign=None) -> dict:
    """Publish a command straight to Kafka, as another service would, and
    return its outcome once the projector has it. Signed with `token`, else by
    `sign` (default: a fresh dev-issuer token for its actor)."""
    publisher = CommandPublisher(engines, sign=sign or signed)
    await publisher.start()
    try:
        await publisher.publish(command, token=token)
    finally:
        await publisher.stop()
    async with httpx.AsyncClient(base_url=stack.url("projector"), headers=bearer("test-harness", "reader")) as projector:
        response = await projector.get(f"/v1/commands/{command.command_id}", params={"wait": 15})
    assert response.status_code == 200, response.text
    return response.json()


def make(kind, model, actor=None, **fields):
    return kind(command_id=uuid4(), model=model, actor=actor or Actor(subject="platform-admin", roles=("admin",)),
                issued_at=datetime.now(timezone.utc), **fields)


def token_for(subject: str, *roles: str, grants: tuple[str, ...] = ()) -> str:
    """A bearer token from the test stack's development issuer."""
    return DevIssuer.local().issue(subject, roles, grants)[1]


def bearer(subject: str, *roles: str, grants: tuple[str, ...] = ()) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(subject, *roles, grants=grants)}"}


def reading_projector(stack) -> httpx.Client:
    """The projector, asked as a serving system: a `reader` of every model."""
    return httpx.Client(base_url=stack.url("projector"), headers=bearer("serving", "reader"), timeout=30)


def wait_for_timeline(auditor_url: str, model: str, count: int, timeout_s: float = 15) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(f"{auditor_url}/v1/audit/models/{model}/timeline", headers=bearer("test-harness", "reader"))
        if response.status_code == 200 and len(response.json()["events"]) >= count:
            return response.json()["events"]
        assert time.monotonic() < deadline, f"auditor has {response.text[:300]}"
        time.sleep(0.1)


async def new_topic(engines, prefix: str, partitions: int = 1) -> str:
    """A new topic (one partition unless told), for a copy of a log to be written to."""
    topic = f"{prefix}-{uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**kafka_connection(engines))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


def modelog(*args: str, env: dict | None = None):
    """Run the CLI as a training pipeline would: a token that may publish, not approve."""
    return CliRunner().invoke(with_installed_commands(), list(args), env={"MODELOG_TOKEN": token_for("ci-pipeline", "publisher"),
                                                    **(env or {})})
