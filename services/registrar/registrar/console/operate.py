"""Operator actions: moving a version to a stage, pointing an alias at it,
and rolling back. Rolling back puts an Archived version into Production and
archives what is there now: the confirmation page says exactly which versions
move before anything is sent. Each action is a command on the one write
path, so roles and the policy (which may forbid roll backs, or guard a
protected alias) are judged as for the API."""

from typing import Annotated

from fastapi import APIRouter, Form, Request

from modelog_contract.domain import commands as c
from modelog_contract.domain.types import Stage
from modelog_platform.web import VersionNumber
from registrar.console.pages import page, refusal_page
from registrar.console.reading import Reads, Refused
from registrar.console.signin import SignedIn
from registrar.console.words import policy_sentences
from registrar.console.writing import submitted

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/models/{name}/versions/{version}/rollback")
async def confirm_rollback(request: Request, session: SignedIn, name: str, version: VersionNumber):
    reading = Reads(request, session)
    try:
        target, production = await reading.gather(
            reading.projector_get(f"/v1/models/{name}/versions/{version}"),
            reading.projector_get(f"/v1/models/{name}/stages/Production"))
    except Refused as refused:
        return refusal_page(request, session, refused.status, refused.code, refused.message)
    policy, _ = await reading.policy_in_force(await reading.model_state(name))
    archived = sorted(v["version"] for v in production.get("versions", []))
    return page(request, session, "rollback.html", title=f"Roll {name} back to version {version}?", name=name,
                target=target, archived=archived, allowed=policy.rollback_allowed, policy=policy_sentences(policy))


@router.post("/models/{name}/versions/{version}/rollback")
async def rollback(request: Request, session: SignedIn, name: str, version: VersionNumber,
                   comment: Annotated[str, Form(max_length=5000)] = ""):
    return await submitted(request, session, c.Rollback, name, f"/console/models/{name}", version=version,
                           comment=comment)


@router.post("/models/{name}/versions/{version}/transitions")
async def request_transition(request: Request, session: SignedIn, name: str, version: VersionNumber,
                             to_stage: Annotated[Stage, Form()], comment: Annotated[str, Form(max_length=5000)] = ""):
    """Move a version (publisher: Staging, Production; operator: Archived). Where
    the policy wants approvals, the request waits in the Approvals inbox."""
    return await submitted(request, session, c.RequestTransition, name, f"/console/models/{name}", version=version,
                           to_stage=to_stage, comment=comment)


@router.post("/models/{name}/versions/{version}/aliases")
async def set_alias(request: Request, session: SignedIn, name: str, version: VersionNumber,
                    alias: Annotated[str, Form(max_length=256)], protected: Annotated[bool, Form()] = False):
    """Point an alias at this version (publisher); a protected one, or moving
    one that is protected, needs an admin, as the decider judges."""
    return await submitted(request, session, c.SetAlias, name, f"/console/models/{name}/versions/{version}",
                           alias=alias, version=version, protected=protected)
