"""Seals against the real stack: the auditor seals the heads into S3 (Object
Lock on SeaweedFS), and a copy of the log whose history was rewritten with
self-consistent chains fails the writer's signatures and the seal, by name."""

import asyncio
import json
import os
import subprocess
import sys

import httpx
from aiokafka import AIOKafkaProducer

from modelog_contract.domain.chain import GENESIS_HASH, link_hash
from modelog_contract.domain.commands import CreateModel, SetTag
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.settings import EVENTS_TOPIC
from tests.e2e.helpers import bearer, decided, make, new_topic, token_for, unique, wait_for_timeline


def modelog(*args: str) -> subprocess.CompletedProcess:
    """The CLI as an auditor would run it: sealing covers every model."""
    return subprocess.run([sys.executable, "-m", "modelog", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "250", "MODELOG_TOKEN": token_for("olga", "auditor")},
                          timeout=180)


def history(engines, stack, model: str) -> None:
    """ModelCreated, then two TagSet: seqs 1 to 3."""
    for command in (make(CreateModel, model), make(SetTag, model, key="team", value="risk"),
                    make(SetTag, model, key="tier", value="gold")):
        assert asyncio.run(decided(engines, stack, command))["accepted"]
    wait_for_timeline(stack.url("auditor"), model, 3)


async def copy_rewriting(engines, model: str) -> str:
    """The whole log copied to a one-partition topic (each model's order kept),
    `model`'s history rewritten from seq 2 on with every link recomputed."""
    records = await read_committed(engines, EVENTS_TOPIC)
    values, prev = [], GENESIS_HASH
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        fields = json.loads(record.value)
        if fields["model"] != model:
            values.append(record.value)
            continue
        if fields["seq"] == 2:
            fields["payload"]["value"] = "mallory"
        fields["prev_hash"] = prev
        fields["hash"] = prev = link_hash(prev, fields)
        values.append(json.dumps(fields).encode())
    topic = await new_topic(engines, "sealed-copy")
    producer = AIOKafkaProducer(**kafka_connection(engines), linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, v, partition=0) for v in values])
    finally:
        await producer.stop()
    return topic


def test_a_rewritten_log_fails_the_signatures_and_the_seal_naming_the_model(engines, stack):
    victim, bystander = unique("sealed-victim"), unique("sealed-bystander")
    history(engines, stack, victim)
    history(engines, stack, bystander)

    sealed = modelog("audit", "seal", "--json")
    assert sealed.returncode == 0, sealed.stdout + sealed.stderr
    answer = json.loads(sealed.stdout)
    heads = {h["model"]: h for h in answer["seal"]["heads"]}
    assert heads[victim]["seq"] == 3 and heads[bystander]["seq"] == 3
    assert answer["locked"] is True  # SeaweedFS keeps it under COMPLIANCE retention
    listed = httpx.get(f"{stack.url('auditor')}/v1/audit/seals", headers=bearer("olga", "auditor")).json()
    assert answer["number"] in [s["number"] for s in listed["seals"]] and listed["problems"] == []

    copy = asyncio.run(copy_rewriting(engines, victim))
    tampered = modelog("audit", "verify", "--topic", copy)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    lines = tampered.stdout.splitlines()
    # Rewritten without the writer's key: each changed event is named, and left
    # out of the log the seal is checked against, where the sealed head is then missing.
    # Only this test's models: the log may hold other tests' forged events, which fail the check as well.
    broken = [line for line in lines if line.startswith("BROKEN") and (victim in line or bystander in line)]
    assert [line.split(" (partition")[0] for line in broken] == [f"BROKEN {victim} seq 2", f"BROKEN {victim} seq 3"]
    assert all("the writer's signature does not verify" in line for line in broken), tampered.stdout
    assert any(line.startswith(f"SEAL BROKEN seal {answer['number']}: {victim} seq 3:")
               and "missing from the log" in line for line in lines), tampered.stdout
    assert bystander not in tampered.stdout

    # The log itself verifies, and its seals agree with it. Other tests' forged
    # events (tests/security) may be in it too: verify names each, as it must,
    # and nothing else.
    untouched = modelog("audit", "verify")
    problems = [line for line in untouched.stdout.splitlines() if "BROKEN" in line]
    assert all(line.startswith("BROKEN ") and "not proven to come from the log's writer" in line
               and victim not in line and bystander not in line for line in problems), untouched.stdout
    assert untouched.returncode == (1 if problems else 0), untouched.stdout + untouched.stderr
    assert "seal(s)" in untouched.stdout.splitlines()[-1]
