"""The verified-token cache answers only the exact token it verified, only
while that token is valid, and holds a bounded number of them."""

from datetime import datetime, timezone

import pytest

from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.identity.token_cache import VerifiedTokens
from modelog_platform.identity.tokens import InvalidToken

LEEWAY_S = IdentitySettings().identity_leeway_s


class CountingVerifier:
    """The real verifier, counting the tokens it was asked to verify."""

    def __init__(self, verifier):
        self.verifier, self.verified = verifier, []

    def verify(self, token, now=None):
        self.verified.append(token)
        return self.verifier.verify(token, now=now)


@pytest.fixture
def verifier(issuer):
    return CountingVerifier(issuer.verifier())


def issue(issuer, clock, subject="serving", ttl_s=600):
    """A token issued at the clock's time."""
    return issuer.issue(subject, ["reader"], ttl_s=ttl_s, now=datetime.fromtimestamp(clock.now, timezone.utc))


def test_a_token_seen_again_is_answered_without_verifying_it_again(issuer, verifier, clock):
    identity, token = issue(issuer, clock)
    tokens = VerifiedTokens(verifier, clock=clock)
    assert tokens.verify(token) == identity
    clock.now += 60
    assert tokens.verify(token) == identity and tokens.cached(token) == identity
    assert verifier.verified == [token]


def test_an_expired_token_is_refused_even_though_it_was_cached(issuer, verifier, clock):
    _, token = issue(issuer, clock, ttl_s=60)
    tokens = VerifiedTokens(verifier, clock=clock)
    tokens.verify(token)
    clock.now += 61  # past exp, within the leeway: judged again, not served from the cache
    assert tokens.cached(token) is None
    tokens.verify(token)
    assert verifier.verified == [token, token]
    clock.now += LEEWAY_S
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token)


def test_an_entry_lasts_at_most_max_age_even_if_the_token_lives_longer(issuer, verifier, clock):
    _, token = issue(issuer, clock, ttl_s=3600)
    tokens = VerifiedTokens(verifier, max_age_s=120, clock=clock)
    tokens.verify(token)
    clock.now += 120
    assert tokens.cached(token) is None


def test_a_tampered_token_is_never_served_from_the_cache(issuer, verifier, clock):
    _, token = issue(issuer, clock)
    tokens = VerifiedTokens(verifier, clock=clock)
    tokens.verify(token)
    header, payload, signature = token.split(".")
    tampered = ".".join((header, payload, ("A" if signature[0] != "A" else "B") + signature[1:]))
    assert tokens.cached(tampered) is None
    with pytest.raises(InvalidToken, match="signature does not verify"):
        tokens.verify(tampered)


def test_a_different_token_gets_its_own_identity(issuer, verifier, clock):
    alice, alices = issue(issuer, clock, "alice")
    bob, bobs = issue(issuer, clock, "bob")
    tokens = VerifiedTokens(verifier, clock=clock)
    assert tokens.verify(alices) == alice
    assert tokens.verify(bobs) == bob
    assert verifier.verified == [alices, bobs]


def test_the_cache_holds_at_most_max_entries_dropping_the_least_recently_used(issuer, verifier, clock):
    tokens = VerifiedTokens(verifier, max_entries=3, clock=clock)
    issued = [issue(issuer, clock, f"caller-{i}")[1] for i in range(5)]
    for token in issued[:3]:
        tokens.verify(token)
    tokens.verify(issued[0])  # used again: now the most recent
    for token in issued[3:]:
        tokens.verify(token)
    assert len(tokens) == 3
    assert [tokens.cached(token) is not None for token in issued] == [True, False, False, True, True]
