"""The approvals inbox: the requests waiting on the signed-in person's role
and grants, each with its gate results, the candidate's model card, and its
metrics against the version in Production; approve or deny with a comment.

Four-eyes is shown, not only enforced: the requester and the registrant are
not offered the approve button (the page says why). A forged form post is
still decided by the decider, which refuses it, and the page shows its reason.
"""

import asyncio
from datetime import datetime, timezone
from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Form, Request

from modelog_contract.domain import commands as c
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.rules import Request as GateRequest
from modelog_contract.domain.rules import count_valid_approvals, evaluate_gates
from modelog_contract.domain.state import ModelState
from modelog_platform.identity.permissions import effective_roles, may_act_on
from registrar.console.browse import metric_rows
from registrar.console.pages import page
from registrar.console.reading import Reads
from registrar.console.signin import SignedIn
from registrar.console.writing import submitted

router = APIRouter(prefix="/console", include_in_schema=False)
# Waiting requests per page of the inbox. Each model on a page costs a replay
# of its state at the auditor (for the gate results), so a page stays short
# however many requests wait across the registry.
REQUESTS_PER_PAGE = 10
CONCURRENT_READS = 16


@router.get("/approvals")
async def inbox(request: Request, session: SignedIn, model: str | None = None, after_model: str | None = None,
                after_request: UUID | None = None):
    """Every waiting request, ten a page by model; or, with `model`, that
    model's (the link a model's page and a reviewer's message give)."""
    reading, who = Reads(request, session), session.identity
    cursor = {"after_model": after_model, "after_request": str(after_request)} if after_model and after_request else {}
    answered: dict | None
    if model:
        one = await reading.maybe(reading.projector_get(f"/v1/models/{model}/transitions"))
        answered = {"pending": [{**p, "model": model} for p in one["pending"]], "next": None} if one else None
    else:
        answered = await reading.maybe(reading.projector_get("/v1/transitions", limit=REQUESTS_PER_PAGE, **cursor))
    by_model: dict[str, list[dict]] = {}
    for pending in answered["pending"] if answered else []:
        by_model.setdefault(pending["model"], []).append(pending)
    gate = asyncio.Semaphore(CONCURRENT_READS)

    async def state_of(name: str) -> ModelState | None:
        async with gate:
            return await reading.model_state(name)

    states = await reading.gather(*map(state_of, by_model))
    default = (await reading.policy_in_force(None))[0] if any(s and s.policy is None for s in states) else None
    items = [item for (name, waiting), state in zip(by_model.items(), states, strict=True) if state is not None
             for p in sorted(waiting, key=lambda p: p["requested_at"])
             if (item := review(who, name, p, state, state.policy or default)) is not None]
    following = answered and answered["next"]
    return page(request, session, "approvals.html", title="Approvals", items=items,
                approver=bool(effective_roles(who.roles) & {"approver", "admin"}), feed="/console/changes",
                more=f"/console/approvals?{urlencode(following)}" if following else None, continued=bool(cursor),
                only=model)


def review(who, name: str, pending: dict, state: ModelState, policy: Policy | None) -> dict | None:
    """A waiting request as its reviewer sees it; None if it was decided
    meanwhile or waits on a role this person lacks."""
    if policy is None or UUID(pending["request_id"]) not in state.pending:
        return None
    if policy.approver_role not in effective_roles(who.roles) or not may_act_on(who.grants, name):
        return None
    request = state.pending[UUID(pending["request_id"])]
    candidate = state.versions[request.version]
    now = datetime.now(timezone.utc)
    gates = evaluate_gates(state, GateRequest(version=candidate, to_stage=request.to_stage), policy, now)
    champion = champion_of(state)
    cannot = why_not_offered(who.subject, request.requested_by, candidate.registered_by,
                             [a.subject for a in request.approvals])
    return {"model": name, "request": request, "candidate": candidate, "gates": gates,
            "approved": count_valid_approvals(request.approvals, policy, now),
            "metrics": metric_rows(candidate.model_dump(mode="json"), champion),
            "champion": champion, "cannot_approve": cannot}


def champion_of(state: ModelState) -> dict | None:
    production = [v for v in state.versions.values() if v.stage == "Production" and not v.deleted]
    return max(production, key=lambda v: v.version).model_dump(mode="json") if production else None


def why_not_offered(subject: str, requester: str, registrant: str, approvers: list[str]) -> str | None:
    if subject == requester:
        return "You requested this move: another reviewer must approve it (four eyes)."
    if subject == registrant:
        return "You registered this version: another reviewer must approve it (four eyes)."
    if subject in approvers:
        return "You have approved this request already."
    return None


Comment = Annotated[str, Form(max_length=5000)]


@router.post("/models/{name}/requests/{request_id}/approve")
async def approve(request: Request, session: SignedIn, name: str, request_id: UUID, comment: Comment = "",
                  back: Annotated[str | None, Form()] = None):
    return await submitted(request, session, c.ApproveTransition, name, back, request_id=request_id, comment=comment)


@router.post("/models/{name}/requests/{request_id}/deny")
async def deny(request: Request, session: SignedIn, name: str, request_id: UUID, comment: Comment = "",
               back: Annotated[str | None, Form()] = None):
    return await submitted(request, session, c.DenyTransition, name, back, request_id=request_id, comment=comment)
