"""`modelog audit verify` against a real topic: a copy of a log, intact and
tampered, its events signed by the stack's log writer key as the promoter signs."""

import json
import os
import subprocess
import sys

from aiokafka import AIOKafkaProducer

from modelog_contract.codec import encode
from modelog_contract.signing import sign_event
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.log_signing import LogWriterSettings, signing_key
from tests.e2e.helpers import new_topic
from tests.unit.builders import Scenario, register


async def copy_of_a_log(engines, tamper) -> str:
    """A one-partition topic holding real events of two models, `tamper` applied to the bytes."""
    topic = await new_topic(engines, "audit-copy")
    values, writer = [], signing_key(LogWriterSettings())
    for model in ("fraud-detector", "churn"):
        s = Scenario(model=model)
        values += [encode(sign_event(e, writer)) for n in (1, 2, 3) for e in s.when(register(model=model, n=n))]
    producer = AIOKafkaProducer(**kafka_connection(engines))
    await producer.start()
    try:
        for value in tamper(values):
            await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()
    return topic


def run_verify(topic: str) -> subprocess.CompletedProcess:
    # These logs are made up here, not the stack's: the stack's seals (if a test
    # sealed it) do not speak of them. The seal checks have tests of their own.
    return subprocess.run([sys.executable, "-m", "modelog", "audit", "verify", "--topic", topic, "--no-seals"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120)


async def test_verify_passes_an_intact_log_and_exits_zero(engines):
    result = run_verify(await copy_of_a_log(engines, lambda values: values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact: 8 events, 2 models" in result.stdout


async def test_verify_names_the_changed_event_and_exits_one(engines):
    def change_one_byte(values):
        values[2] = values[2].replace(b'"alice"', b'"alicf"')  # fraud-detector, seq 3
        return values

    result = run_verify(await copy_of_a_log(engines, change_one_byte))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN fraud-detector seq 3 (partition 0, offset 2): hash does not match" in result.stdout


async def test_verify_names_an_unsigned_event_and_exits_one(engines):
    def strip_a_signature(values):
        fields = json.loads(values[5])  # churn, seq 2
        values[5] = json.dumps({**fields, "signature": None}).encode()
        return values

    result = run_verify(await copy_of_a_log(engines, strip_a_signature))
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if line.startswith("BROKEN")]
    assert len(broken) == 2 and broken[0].startswith("BROKEN churn seq 2 (partition 0, offset 5): unsigned"), broken
    # Left out of its chain, which then misses it: what every reader of the log sees.
    assert broken[1].startswith("BROKEN churn seq 3 (partition 0, offset 6): expected seq 2 here"), broken
