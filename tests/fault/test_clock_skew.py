"""Clock skew between the registrar and the promoter, decided by the documented
rule (docs/identity.md, "Signed commands"; docs/idempotency.md): a command's
token is judged at the time the broker appended the command, with the
verifier's leeway (30 s) for clocks that disagree; the command's `issued_at`
is the registrar's clock, and its events carry that time as given.

Each command is published straight to Kafka, signed as a registrar whose
clock is off would sign it, and decided by the real promoter."""

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from modelog_contract.codec import decode_event
from modelog_contract.domain.chain import first_broken_link
from modelog_contract.domain.commands import RegisterVersion
from modelog_contract.domain.types import Actor, Artifact
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.identity.command_binding import command_digest
from modelog_platform.identity.dev import DevIssuer
from modelog_platform.settings import EVENTS_TOPIC
from tests.e2e.helpers import decided, unique

pytestmark = pytest.mark.engines

LEEWAY = timedelta(seconds=30)  # MODELOG_IDENTITY_LEEWAY_S's default, as the promoter runs
ACTOR = Actor(subject="skewed-registrar-caller", roles=("publisher",))


def registration(model: str, issued_at: datetime) -> RegisterVersion:
    digest = "ab" * 32
    return RegisterVersion(command_id=uuid4(), model=model, actor=ACTOR, issued_at=issued_at,
                           artifact=Artifact(uri=f"s3://b/{digest}", sha256=digest, size=1))


def signed_by_a_clock_at(command: RegisterVersion, clock: datetime, ttl_s: float = 300):
    """The command with a token minted as a registrar whose clock reads `clock` would mint it."""
    identity, token = DevIssuer.local().issue(command.actor.subject, command.actor.roles, ttl_s=ttl_s,
                                              now=clock, command=command_digest(command))
    return command.model_copy(update={"actor": identity.actor}), token


async def decide_with_skew(engines, stack, token_skew: timedelta, issued_skew: timedelta = timedelta(0),
                           model: str | None = None) -> tuple[dict, RegisterVersion]:
    now = datetime.now(timezone.utc)
    command, token = signed_by_a_clock_at(registration(model or unique("skew"), now + issued_skew), now + token_skew)
    return await decided(engines, stack, command, token=token), command


async def test_a_token_from_a_clock_ahead_within_the_leeway_is_accepted(stack, engines):
    outcome, _ = await decide_with_skew(engines, stack, LEEWAY / 3)
    assert outcome["accepted"], outcome


async def test_a_token_from_a_clock_ahead_beyond_the_leeway_is_refused_unauthenticated(stack, engines):
    outcome, _ = await decide_with_skew(engines, stack, timedelta(minutes=2))
    assert not outcome["accepted"] and outcome["reason"] == "unauthenticated", outcome


async def test_a_token_from_a_clock_behind_past_its_expiry_is_refused_unauthenticated(stack, engines):
    outcome, _ = await decide_with_skew(engines, stack, -timedelta(hours=2))
    assert not outcome["accepted"] and outcome["reason"] == "unauthenticated", outcome


async def test_a_command_issued_in_the_past_is_decided_and_its_events_keep_its_time(stack, engines):
    """issued_at is not checked against the promoter's clock; only the model's
    idempotency horizon refuses an old one (command_expired, docs/idempotency.md),
    and a model that forgot no id has none. The events carry issued_at as
    given, even when it is earlier than the model's previous event."""
    model = unique("skew-past")
    first, _ = await decide_with_skew(engines, stack, timedelta(0), model=model)
    late, command = await decide_with_skew(engines, stack, timedelta(0), -timedelta(hours=2), model=model)
    assert first["accepted"] and late["accepted"], (first, late)
    mine = [decode_event(r.value) for r in await read_committed(engines, EVENTS_TOPIC) if r.key == model.encode()]
    assert [e.seq for e in mine] == [1, 2, 3]  # ModelCreated and VersionRegistered, then the second version
    assert first_broken_link(mine) is None
    assert mine[-1].command_id == command.command_id and mine[-1].occurred_at == command.issued_at
    assert mine[-1].occurred_at < mine[0].occurred_at
