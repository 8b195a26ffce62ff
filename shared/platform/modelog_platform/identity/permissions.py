"""Who may do what: pure functions over an identity and a command.

A permission is a role, or roles any one of which will do: reader <
publisher (register, report metrics, tag, request promotions), approver
(approve or deny transitions), operator (roll back, archive), auditor (the
audit trail's questions that span models: an actor's events, exports of every
model, chain alerts), admin (policies, protected aliases, deletes; every
role), server (a serving process: reads, and reports which version each of
its instances serves; a role of its own because a serving fleet's token is
copied to many machines, and it must not also promote or roll back, as an
operator's may; an operator may report too, by hand). A model card is
revised by a publisher (its author) or an approver (a reviewer adding
findings).
Grants narrow the models a token may act on: model names, or prefixes ending
in '*'; a token without grants may act on every model. A question that spans
every model needs a token without grants.
"""

from dataclasses import dataclass
from typing import TypeAlias

from modelog_contract.domain import commands as c
from modelog_contract.domain.commands import Command
from modelog_platform.identity.roles import (  # noqa: F401 (ROLES: named through here too)
    ADMIN,
    APPROVER,
    AUDITOR,
    INCLUDES,
    OPERATOR,
    PUBLISHER,
    READER,
    ROLES,
    SERVER,
)
from modelog_platform.identity.tokens import Identity

# A role, or roles any one of which will do.
Permission: TypeAlias = str | tuple[str, ...]
CARD_REVISERS = (PUBLISHER, APPROVER)

# The role each command needs; the commands whose need depends on their fields
# are decided in required_permission.
BY_COMMAND: dict[type, Permission] = {
    c.CreateModel: PUBLISHER, c.RegisterVersion: PUBLISHER, c.UpdateModel: PUBLISHER,
    c.UpdateVersion: PUBLISHER, c.SetTag: PUBLISHER, c.DeleteTag: PUBLISHER, c.ReportMetrics: PUBLISHER,
    c.ReviseModelCard: CARD_REVISERS,
    c.ApproveTransition: APPROVER, c.DenyTransition: APPROVER,
    c.Rollback: OPERATOR, c.SetTrafficSplit: OPERATOR, c.ReportServing: (SERVER, OPERATOR),
    c.DeleteAlias: PUBLISHER,  # the decider asks more for a protected alias: that needs the state
    c.SetPolicy: ADMIN, c.DeleteVersion: ADMIN, c.DeleteModel: ADMIN,
}


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    missing: str  # the permission, e.g. "approver on fraud-detector"


def effective_roles(roles) -> frozenset[str]:
    return frozenset(r for role in roles if role in INCLUDES for r in (role, *INCLUDES[role]))


def may_act_on(grants, model: str) -> bool:
    return not grants or any(model.startswith(g[:-1]) if g.endswith("*") else model == g for g in grants)


def covers_every_model(grants) -> bool:
    return not grants or "*" in grants


def required_permission(command: Command) -> Permission:
    match command:
        case c.RequestTransition(to_stage="Archived"):
            return OPERATOR
        case c.RequestTransition():
            return PUBLISHER
        case c.SetAlias(protected=True):
            return ADMIN
        case c.SetAlias():
            return PUBLISHER
    return BY_COMMAND[type(command)]


def roles_of(permission: Permission) -> tuple[str, ...]:
    return (permission,) if isinstance(permission, str) else permission


def named(permission: Permission) -> str:
    """'publisher', or 'publisher or approver'."""
    return " or ".join(roles_of(permission))


def lacks_role(identity: Identity, permission: Permission, scope: str = "any model",
               missing: str | None = None) -> Refusal | None:
    """The role alone; what the token's grants cover is for the caller to narrow."""
    needed = roles_of(permission)
    if not effective_roles(identity.roles).isdisjoint(needed):
        return None
    return Refusal("forbidden", f"{identity.subject} needs the {' or '.join(map(repr, needed))} role on {scope}",
                   missing or f"{named(permission)} on {scope}")


def authorize(identity: Identity, permission: Permission, model: str) -> Refusal | None:
    refusal = lacks_role(identity, permission, f"model {model!r}", f"{named(permission)} on {model}")
    if refusal is not None:
        return refusal
    if not may_act_on(identity.grants, model):
        return Refusal("forbidden", f"{identity.subject}'s token grants no access to model {model!r} "
                                    f"(it grants {', '.join(identity.grants)})", f"{named(permission)} on {model}")
    return None


def authorize_every_model(identity: Identity, permission: str) -> Refusal | None:
    """For a question whose answer spans models (an actor's events, a whole
    export, chain alerts): the role, and a token its grants do not narrow."""
    refusal = lacks_role(identity, permission, "every model")
    if refusal is not None or covers_every_model(identity.grants):
        return refusal
    return Refusal("forbidden", f"{identity.subject}'s token grants access to some models only "
                                f"({', '.join(identity.grants)}); this answer spans every model",
                   f"{permission} on every model")


def check(identity: Identity, command: Command) -> Refusal | None:
    return authorize(identity, required_permission(command), command.model)


def grant_claim(spec: str) -> str:
    """`prefix:team-a.` -> `team-a.*`, `model:fraud` -> `fraud`; a claim as is."""
    kind, colon, value = spec.partition(":")
    if not colon or not value:
        return spec
    if kind == "prefix":
        return value + "*"
    if kind == "model":
        return value
    raise ValueError(f"unknown grant {spec!r}: use model:NAME or prefix:PREFIX")
