"""Commands published straight to Kafka must carry a token proving their actor.

Against the real stack (the promoter requires signed commands by default):
an unsigned, forged, expired, mismatched or replayed command becomes a
CommandRejected(unauthenticated) in modelog.events and nothing else happens;
a reviewer's signed approval promotes; a self-approval is refused."""

import asyncio
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.codec import decode_event
from modelog_contract.domain import commands as c
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.types import Actor, Artifact
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.identity.dev import DevIssuer
from modelog_platform.identity.tokens import claims_for, sign
from modelog_platform.settings import EVENTS_TOPIC
from tests.e2e.helpers import bearer, decided

pytestmark = pytest.mark.engines

ALICE = Actor(subject="alice", roles=("publisher",))
BOB = Actor(subject="bob", roles=("approver",))
ADMIN = Actor(subject="platform-admin", roles=("admin",))


def command(kind, model, actor, **fields):
    return kind(command_id=uuid4(), model=model, actor=actor, issued_at=datetime.now(timezone.utc), **fields)


def token_for(actor: Actor, **issue) -> tuple[Actor, str]:
    identity, token = DevIssuer.local().issue(actor.subject, actor.roles, **issue)
    return identity.actor, token


def signed_by(kind, model, actor, **fields):
    """A command whose actor is exactly who its fresh token proves."""
    proven, token = token_for(actor, ttl_s=300)
    return command(kind, model, proven, **fields), token


def events_of(engines, model: str):
    return [e for e in (decode_event(r.value) for r in asyncio.run(read_committed(engines, EVENTS_TOPIC)))
            if e.model == model]


def unsigned(command):
    return command, None  # published as it is, with no token


def decide(engines, stack, cmd, token) -> dict:
    """The outcome of `cmd` published with `token` (None: with no token at all)."""
    return asyncio.run(decided(engines, stack, cmd, token, sign=unsigned))


@pytest.fixture
def pending_promotion(engines, stack):
    """A model with its own policy (one approval for Production), version 1
    registered and requested for Production by alice: a request bob may approve."""
    model = f"signed-{uuid4().hex[:8]}"
    digest = uuid4().hex * 2
    for cmd, token in [
        signed_by(c.RegisterVersion, model, ALICE, artifact=Artifact(uri=f"s3://b/{digest}", sha256=digest, size=1)),
        signed_by(c.SetPolicy, model, ADMIN, policy=Policy(approvals_required={"Production": 1})),
        signed_by(c.RequestTransition, model, ALICE, version=1, to_stage="Staging"),
    ]:
        assert decide(engines, stack, cmd, token)["accepted"], cmd
    request, token = signed_by(c.RequestTransition, model, ALICE, version=1, to_stage="Production")
    assert decide(engines, stack, request, token)["accepted"]
    return model, request.command_id


def assert_refused_unauthenticated(engines, stack, cmd, token, message: str, proven: Actor | None):
    model = cmd.model
    before = events_of(engines, model)
    result = decide(engines, stack, cmd, token)
    assert (result["accepted"], result["reason"]) == (False, "unauthenticated")
    assert message in result["message"]
    [refusal] = events_of(engines, model)[len(before):]  # one event, and nothing else
    assert refusal.type == "CommandRejected" and refusal.payload.reason == "unauthenticated"
    assert refusal.command_id == cmd.command_id and refusal.payload.command_type == cmd.type
    assert refusal.actor == (proven or Actor(subject="unknown"))  # never the actor the command claims
    return refusal


def stage_of(stack, model: str, version: int = 1) -> str:
    return httpx.get(f"{stack.url('projector')}/v1/models/{model}/versions/{version}",
                     headers=bearer("serving", "reader")).json()["stage"]


def test_an_unsigned_command_is_refused_and_changes_nothing(engines, stack, pending_promotion):
    model, request_id = pending_promotion
    approval = command(c.ApproveTransition, model, BOB, request_id=request_id)
    assert_refused_unauthenticated(engines, stack, approval, None, "no bearer token", None)
    assert stage_of(stack, model) == "Staging"


def test_an_unsigned_registration_creates_no_model(engines, stack):
    model, digest = f"unsigned-{uuid4().hex[:8]}", uuid4().hex * 2
    register = command(c.RegisterVersion, model, ADMIN, artifact=Artifact(uri=f"s3://b/{digest}", sha256=digest, size=1))
    assert_refused_unauthenticated(engines, stack, register, None, "no bearer token", None)
    assert httpx.get(f"{stack.url('projector')}/v1/models/{model}", headers=bearer("serving", "reader")).status_code == 404


def test_a_forged_signature_is_refused(engines, stack, pending_promotion):
    model, request_id = pending_promotion
    claims = claims_for(issuer="modelog-dev", audience="modelog", subject="bob", roles=["approver"])
    forged = sign(claims, Ed25519PrivateKey.generate())  # right claims, someone else's key
    actor = Actor(subject="bob", roles=("approver",), issuer="modelog-dev", token_id=claims["jti"])
    approval = command(c.ApproveTransition, model, actor, request_id=request_id)
    assert_refused_unauthenticated(engines, stack, approval, forged, "signature does not verify", None)
    assert stage_of(stack, model) == "Staging"


def test_an_expired_token_is_refused(engines, stack, pending_promotion):
    model, request_id = pending_promotion
    proven, expired = token_for(BOB, ttl_s=60, now=datetime.now(timezone.utc) - timedelta(hours=1))
    approval = command(c.ApproveTransition, model, proven, request_id=request_id)
    assert_refused_unauthenticated(engines, stack, approval, expired, "expired", None)
    assert stage_of(stack, model) == "Staging"


def test_an_actor_in_the_body_other_than_the_token_proves_is_refused(engines, stack, pending_promotion):
    model, request_id = pending_promotion
    # carol holds a publisher token and claims the approver role in the body.
    proven, token = token_for(Actor(subject="carol", roles=("publisher",)), ttl_s=300)
    escalated = proven.model_copy(update={"roles": ("approver",)})
    approval = command(c.ApproveTransition, model, escalated, request_id=request_id)
    refusal = assert_refused_unauthenticated(engines, stack, approval, token, "is not the one its token proves",
                                             proven)
    assert refusal.actor.roles == ("publisher",)
    assert stage_of(stack, model) == "Staging"


def test_a_token_replayed_for_another_command_is_refused(engines, stack, pending_promotion):
    model, request_id = pending_promotion
    tag, token = signed_by(c.SetTag, model, BOB, key="reviewed", value="yes")
    assert decide(engines, stack, tag, token)["accepted"]
    # The same token again, now on an approval: a replay, whoever sends it.
    approval = command(c.ApproveTransition, model, tag.actor, request_id=request_id)
    assert_refused_unauthenticated(engines, stack, approval, token, f"already used for command {tag.command_id}",
                                   tag.actor)
    assert stage_of(stack, model) == "Staging"


def test_a_spent_token_stays_spent_after_the_promoter_restarts(engines, stack, pending_promotion):
    """Spent token ids are rebuilt from the log on restore, not kept in memory only."""
    from modelog_platform import services
    from modelog_platform.settings import LocalStack

    model, request_id = pending_promotion
    tag, token = signed_by(c.SetTag, model, BOB, key="reviewed", value="yes")
    assert decide(engines, stack, tag, token)["accepted"]
    local = LocalStack()
    services.stop("promoter", local)
    services.start("promoter", local)
    services.wait_ready("promoter", local, stack, timeout_s=180)
    approval = command(c.ApproveTransition, model, tag.actor, request_id=request_id)
    assert_refused_unauthenticated(engines, stack, approval, token, f"already used for command {tag.command_id}",
                                   tag.actor)


def test_a_second_persons_signed_approval_promotes_and_the_event_names_the_token(engines, stack, pending_promotion):
    model, request_id = pending_promotion
    approval, token = signed_by(c.ApproveTransition, model, BOB, request_id=request_id)
    assert decide(engines, stack, approval, token)["accepted"]
    assert stage_of(stack, model) == "Production"
    granted = [e for e in events_of(engines, model) if e.command_id == approval.command_id]
    assert [e.type for e in granted] == ["ApprovalGranted", "StageChanged"]
    assert {e.actor for e in granted} == {approval.actor}
    assert approval.actor.issuer == "modelog-dev" and approval.actor.token_id


def test_a_signed_self_approval_is_refused_by_four_eyes(engines, stack, pending_promotion):
    model, request_id = pending_promotion
    # alice requested it; even holding the approver role, she may not approve it.
    approval, token = signed_by(c.ApproveTransition, model, Actor(subject="alice", roles=("approver",)),
                                request_id=request_id)
    result = decide(engines, stack, approval, token)
    assert (result["accepted"], result["reason"]) == (False, "self_approval")
    assert stage_of(stack, model) == "Staging"
