"""A command token names the one command it was minted for.

The promoter spends a token id once, but only in the memory of the process
that owns the token's partition: another promoter, owning another model's
partition, would accept the same token on a second command. So each command
token carries a claim, `cmd`, with a digest of the command it signs (every
field but the actor, which the token itself proves), and the promoter refuses
a token whose digest is not the command's. A replay on any other command,
on any partition, fails that check wherever it lands; the same command again
is a redelivery, which the decider's idempotency window answers.

The digest is of canonical JSON (the hash chain's), so the publisher's
command and the promoter's decoding of its bytes give the same digest.
"""

import hashlib

from modelog_contract.domain.chain import canonical_json
from modelog_contract.domain.commands import CommandBase

BINDING_CLAIM = "cmd"
DIGEST_PREFIX = "sha256:"


def command_digest(command: CommandBase) -> str:
    """What a token bound to `command` carries in its `cmd` claim."""
    body = command.model_dump(mode="json", exclude={"actor"})
    return DIGEST_PREFIX + hashlib.sha256(canonical_json(body)).hexdigest()


def bound_elsewhere(token_binding: str | None, command: CommandBase) -> bool:
    """Whether a token bound to `token_binding` was minted for another command
    than `command`; an unbound token (None) is bound to none, see docs/identity.md."""
    return token_binding is not None and token_binding != command_digest(command)
