"""Before a command is decided, its token must prove its actor.

A command record carries a bearer token (header `authorization`). The token
must verify (signature, issuer, audience, time judged at the broker's append
time), and the command's actor must be exactly the identity it proves:
subject, roles, issuer and token id. A token is spent by the first command
that carries it; another command with the same token id is a replay.

Which token ids are spent lives in memory, shared by every partition this
promoter owns (so a replay against another model is caught too), and is
rebuilt on restore from the events themselves: each event's actor records its
token id. A token id is remembered only while its token could still verify
(until expiry plus leeway); command tokens may live at most
`command_token_max_ttl_s`, so restore can bound that time without knowing each
token's expiry, and memory stays bounded by the commands of that window.
Keeping this out of the per-model state keeps the domain free of it and the
state small; the price is that two promoter processes owning different
partitions do not see each other's token ids. What closes that gap is the
token's binding: a command token carries the digest of the one command it was
minted for (`cmd`, modelog_platform/identity/command_binding.py), and a token
bound to another command is refused before it is spent, so a replay is refused
by whichever promoter owns its partition, and cannot spend the token ahead of
the command it was minted for. A token without the claim (minted outside
modelog) is judged by the spent ids alone, as docs/identity.md says.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from modelog_contract.domain.commands import Command
from modelog_contract.domain.types import Actor
from modelog_platform.identity.command_binding import bound_elsewhere
from modelog_platform.identity.tokens import InvalidToken, TokenVerifier


@dataclass(frozen=True)
class Unauthenticated:
    message: str
    proven: Actor | None = None  # who the token proved, when it verified


class SpentTokens:
    """token id -> (the command it was spent on, when it may be forgotten)."""

    PRUNE_EVERY = 10_000

    def __init__(self) -> None:
        self.spent: dict[str, tuple[UUID, datetime]] = {}
        self._since_prune = 0

    def spend(self, token_id: str, command_id: UUID, forget_after: datetime) -> UUID | None:
        """Spend `token_id` on `command_id`; returns the other command it was already spent on, if any."""
        known = self.spent.get(token_id)
        if known is not None and known[0] != command_id:
            return known[0]
        if known is None or known[1] < forget_after:
            self.spent[token_id] = (command_id, forget_after)
        return None

    def prune(self, now: datetime) -> None:
        self._since_prune += 1
        if self._since_prune >= self.PRUNE_EVERY:
            self._since_prune = 0
            self.spent = {t: v for t, v in self.spent.items() if v[1] >= now}


class CommandAuthenticator:
    def __init__(self, verifier: TokenVerifier, spent: SpentTokens, max_ttl_s: float):
        self.verifier, self.spent = verifier, spent
        self.max_ttl = timedelta(seconds=max_ttl_s)
        # How long after a decision its token id must be remembered.
        self.retention = self.max_ttl + timedelta(seconds=verifier.leeway_s)

    def authenticate(self, command: Command, token: str | None, at: datetime) -> Unauthenticated | None:
        if token is None:
            return Unauthenticated("the command carries no bearer token in its authorization header")
        try:
            identity = self.verifier.verify(token, now=at)
        except InvalidToken as error:
            return Unauthenticated(str(error))
        proven = identity.actor
        if bound_elsewhere(identity.command, command):
            return Unauthenticated(f"token {identity.token_id} is bound to another command than "
                                   f"{command.command_id}: a command token signs one command only", proven)
        self.spent.prune(at)
        forget_after = max(at + self.retention, identity.expires_at + timedelta(seconds=self.verifier.leeway_s))
        other = self.spent.spend(identity.token_id, command.command_id, forget_after)
        if other is not None:
            return Unauthenticated(f"token {identity.token_id} was already used for command {other}", proven)
        if identity.expires_at - at > self.max_ttl:
            return Unauthenticated(f"a command's token may live at most {self.max_ttl.total_seconds():.0f}s; "
                                   f"this one is valid until {identity.expires_at.isoformat()}", proven)
        if command.actor != proven:
            return Unauthenticated(f"the command's actor {_describe(command.actor)} is not the one its token "
                                   f"proves, {_describe(proven)}", proven)
        return None

    def remember(self, token_id: str, command_id: UUID, decided_at: datetime) -> None:
        """A token id found in the log on restore: spent on that command."""
        self.spent.spend(token_id, command_id, decided_at + self.retention)


def _describe(actor: Actor) -> str:
    return (f"{actor.subject} (roles {list(actor.roles)}, issuer {actor.issuer}, token {actor.token_id})")
