"""The promoter's check before deciding: the token proves the command's actor,
and a token is spent by the first command that carries it."""

from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_platform.identity.dev import DevIssuer, signed
from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.identity.tokens import claims_for, sign
from promoter.authentication import CommandAuthenticator, SpentTokens
from tests.unit.builders import ALICE, BOB, T0, register

AT = T0 + timedelta(seconds=5)


@pytest.fixture
def issuer(tmp_path):
    return DevIssuer(tmp_path, IdentitySettings())


@pytest.fixture
def authenticator(issuer):
    return CommandAuthenticator(issuer.verifier(), SpentTokens(), max_ttl_s=3600)


def signed_at(issuer, command, ttl_s=300, now=T0):
    identity, token = issuer.issue(command.actor.subject, command.actor.roles, ttl_s=ttl_s, now=now)
    return command.model_copy(update={"actor": identity.actor}), token


def test_a_command_whose_token_proves_its_actor_passes(issuer, authenticator):
    command, token = signed_at(issuer, register(n=1))
    assert authenticator.authenticate(command, token, AT) is None
    assert authenticator.authenticate(command, token, AT) is None  # the same command again: a retry


def test_a_command_without_a_token_is_refused_on_nobody(authenticator):
    refused = authenticator.authenticate(register(n=1), None, AT)
    assert "no bearer token" in refused.message and refused.proven is None


def test_a_forged_or_expired_token_proves_nobody(issuer, authenticator):
    command, _ = signed_at(issuer, register(n=1))
    forged = sign(claims_for(issuer="modelog-dev", audience="modelog", subject="alice", roles=["publisher"],
                             now=T0), Ed25519PrivateKey.generate())
    refused = authenticator.authenticate(command, forged, AT)
    assert "signature does not verify" in refused.message and refused.proven is None
    command, token = signed_at(issuer, register(n=2), ttl_s=60)
    refused = authenticator.authenticate(command, token, T0 + timedelta(seconds=60 + 31))
    assert "expired" in refused.message and refused.proven is None


@pytest.mark.parametrize("claimed", [
    {"subject": "bob"},
    {"roles": ("publisher", "admin")},
    {"issuer": "https://idp.example.com"},
    {"token_id": "another-token"},
])
def test_an_actor_other_than_the_token_proves_is_refused_on_whom_it_proves(issuer, authenticator, claimed):
    command, token = signed_at(issuer, register(n=1))
    lying = command.model_copy(update={"actor": command.actor.model_copy(update=claimed)})
    refused = authenticator.authenticate(lying, token, AT)
    assert "is not the one its token proves" in refused.message
    assert refused.proven == command.actor


def test_a_token_spent_on_one_command_is_refused_for_another(issuer, authenticator):
    first, token = signed_at(issuer, register(n=1))
    assert authenticator.authenticate(first, token, AT) is None
    second = register(n=2, actor=first.actor)
    refused = authenticator.authenticate(second, token, AT)
    assert f"already used for command {first.command_id}" in refused.message
    assert refused.proven == first.actor


def test_spent_tokens_found_in_the_log_are_remembered_after_a_restart(issuer):
    first, token = signed_at(issuer, register(n=1))
    restarted = CommandAuthenticator(issuer.verifier(), SpentTokens(), max_ttl_s=3600)
    restarted.remember(first.actor.token_id, first.command_id, AT)
    assert restarted.authenticate(first, token, AT) is None
    assert "already used" in restarted.authenticate(register(n=2, actor=first.actor), token, AT).message


def test_a_token_living_longer_than_a_command_token_may_is_refused(issuer):
    authenticator = CommandAuthenticator(issuer.verifier(), SpentTokens(), max_ttl_s=600)
    command, token = signed_at(issuer, register(n=1), ttl_s=3600)
    assert "may live at most 600s" in authenticator.authenticate(command, token, AT).message


def test_spent_tokens_are_forgotten_once_they_could_no_longer_verify():
    spent = SpentTokens()
    spent.PRUNE_EVERY = 1
    command_id = register(n=1).command_id
    spent.spend("t1", command_id, T0 + timedelta(hours=1))
    spent.prune(T0 + timedelta(minutes=59))
    assert "t1" in spent.spent
    spent.prune(T0 + timedelta(hours=1, seconds=1))
    assert "t1" not in spent.spent


def test_signed_binds_any_actor_for_the_local_stack(issuer, authenticator):
    for actor in (ALICE, BOB):
        command, token = signed(register(n=1, actor=actor), issuer)
        assert authenticator.authenticate(command, token, datetime.now(timezone.utc)) is None
