"""Rotating the log writer's key on the running stack, as docs/log-signing.md
says: events key A signed keep verifying, the promoter restarted with key B
writes events every reader accepts, and an event key A signs after its
retirement is quarantined like any forgery.

The local stack keeps its writer pair under <home>/log-writer/; rotating it
there (B's private key, a public bundle of A retired and B) leaves the
session's stack rotated for the tests after this one, as an operator's would be."""

import asyncio
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.domain.commands import CreateModel, SetTag
from modelog_contract.signing import key_id
from modelog_platform import services
from modelog_platform.log_signing import RETIRED_AFTER, local_writer_directory, signing_key
from modelog_platform.settings import LocalStack, LogWriterSettings
from tests.e2e.helpers import decided, make, unique
from tests.security.forgery import append, log_of, modelog, next_event, quarantined_newest, signed_by

pytestmark = pytest.mark.engines


def replace(path: Path, data: bytes) -> None:
    """Whole or not at all: a service starting meanwhile never reads half a key."""
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    os.chmod(partial, 0o600)
    partial.replace(path)


def restart(local: LocalStack, ports, *instances: str) -> None:
    for instance in instances:
        services.stop(instance, local)
        services.start(instance, local)
        services.wait_ready(instance, local, ports)


def test_rotating_the_writer_key(engines, stack):
    model = unique("rotated")
    for command in (make(CreateModel, model), make(SetTag, model, key="signed-by", value="A")):
        assert asyncio.run(decided(engines, stack, command))["accepted"]
    key_a = signing_key(LogWriterSettings())
    assert {e["signature"]["key_id"] for e in log_of(engines, model)} == {key_id(key_a.public_key())}

    local, key_b = LocalStack(), Ed25519PrivateKey.generate()
    directory = local_writer_directory(LogWriterSettings())
    public_a = (directory / "public.pem").read_bytes()
    public_b = key_b.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    services.stop("promoter", local)  # nothing is signed with A from here on
    retired_at = datetime.now(timezone.utc)
    replace(directory / "public.pem", f"{RETIRED_AFTER} {retired_at.isoformat()}\n".encode() + public_a + public_b)
    replace(directory / "private.pem", key_b.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    restart(local, stack, "projector", "auditor")  # readers take the new bundle at start
    restart(local, stack, "promoter")  # restores A's events (before A's retirement), signs with B

    outcome = asyncio.run(decided(engines, stack, make(SetTag, model, key="signed-by", value="B")))
    assert outcome["accepted"] and outcome["last_seq"] == 3, outcome  # projected: the projector trusts B
    events = log_of(engines, model)
    assert [e["signature"]["key_id"] for e in events] == [key_id(key_a.public_key())] * 2 + [
        key_id(key_b.public_key())]

    late = signed_by(next_event(events[-1], events[-1]), key_a)  # A, after its retirement
    append(engines, model, late)
    newest = quarantined_newest(stack, late["event_id"])["checks"]["unproven_events"]["newest"]
    assert "after it was retired" in newest["problem"], newest

    verdict = modelog("audit", "verify", "--no-seals")
    broken = [line for line in verdict.stdout.splitlines() if line.startswith(f"BROKEN {model} ")]
    # A's events before its retirement and B's verify; A's late one alone is named.
    assert len(broken) == 1 and "seq 4 " in broken[0] and "after it was retired" in broken[0], verdict.stdout
