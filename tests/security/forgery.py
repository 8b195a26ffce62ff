"""Forging modelog.events as someone who can append to it but holds no writer
key: the stream's events as stored, a correctly chained next event, appended
as the test process (the stack's admin, whom no ACL stops), and what the
readers then say about it."""

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from uuid import uuid4

import httpx
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.codec import encode
from modelog_contract.domain.chain import GENESIS_HASH, link_hash
from modelog_contract.domain.events import Event
from modelog_contract.signing import sign_event
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import model_partition, read_committed
from modelog_platform.settings import EVENTS_TOPIC
from tests.e2e.helpers import bearer, token_for

MALLORY = {"subject": "mallory", "roles": ["admin"]}


def log_of(engines, stream: str) -> list[dict]:
    """The stream's events as stored, in log order."""
    records = asyncio.run(read_committed(engines, EVENTS_TOPIC))
    return [json.loads(r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset))
            if r.key == stream.encode()]


def append(engines, stream: str, fields: dict) -> tuple[int, int]:
    """Append to modelog.events as the test process (the stack's admin, whom no
    ACL stops), where the promoter writes the stream; its (partition, offset)."""
    async def send() -> tuple[int, int]:
        producer = AIOKafkaProducer(**kafka_connection(engines))
        await producer.start()
        try:
            sent = await producer.send_and_wait(EVENTS_TOPIC, json.dumps(fields).encode(), key=stream.encode(),
                                                partition=model_partition(stream, engines.topic_partitions))
        finally:
            await producer.stop()
        return sent.partition, sent.offset
    return asyncio.run(send())


def next_event(head: dict | None, template: dict, **changes) -> dict:
    """`template` rewritten as the stream's next event after `head`, correctly
    chained and hashed, unsigned."""
    fields = {**template, "event_id": str(uuid4()), "command_id": str(uuid4()), "actor": MALLORY,
              "seq": head["seq"] + 1 if head else 1, "prev_hash": head["hash"] if head else GENESIS_HASH,
              "occurred_at": datetime.now(timezone.utc).isoformat(), "command_position": None,
              "closes_decision": True, "signature": None, **changes}
    fields["hash"] = link_hash(fields["prev_hash"], fields)
    return fields


def signed_by(fields: dict, key: Ed25519PrivateKey) -> dict:
    return json.loads(encode(sign_event(Event.model_validate(fields), key)))


def projector(stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url("projector"), headers=bearer("serving", "reader"), timeout=30)


def quarantined_newest(stack, event_id: str, timeout_s: float = 20) -> dict:
    """The projector's /readyz once it names `event_id` as the newest quarantined event."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(f"{stack.url('projector')}/readyz", timeout=10).json()
        newest = answer["checks"]["unproven_events"]["newest"]
        if newest and newest["event_id"] == event_id:
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)


def auditor_alert(stack, event_id: str, timeout_s: float = 20) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        alerts = httpx.get(f"{stack.url('auditor')}/v1/audit/alerts", params={"limit": 50},
                           headers=bearer("olga", "auditor"), timeout=10).json()["alerts"]
        if found := [a for a in alerts if a["event_id"] == event_id]:
            return found[0]
        assert time.monotonic() < deadline, alerts
        time.sleep(0.2)


def modelog(*args: str) -> subprocess.CompletedProcess:
    """The CLI as an auditor runs it."""
    return subprocess.run([sys.executable, "-m", "modelog", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "300", "MODELOG_TOKEN": token_for("olga", "auditor")},
                          timeout=300)
