"""The pages that read: Models (search, keyset pages), Model (versions by
stage, aliases, the policy in words, pending requests, history) and Version
(lineage, metrics beside Production's, the model card, the artifact)."""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from modelog_platform.identity import permissions
from modelog_platform.identity.http import authorize
from modelog_platform.web import ApiError, VersionNumber
from registrar import reads
from registrar.console.pages import page, refusal_page
from registrar.console.reading import Reads, Refused
from registrar.console.signin import SignedIn
from registrar.console.words import policy_sentences

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 25
SHOWN_STAGES = ("Production", "Staging", "None", "Archived")


@router.get("")
@router.get("/")
async def home():
    return RedirectResponse("/console/models", 303)


@router.get("/models")
async def models(request: Request, session: SignedIn, name: str | None = None, tag: str | None = None,
                 stage: str | None = None, after: str | None = None):
    reading = Reads(request, session)
    stage = stage if stage in SHOWN_STAGES else None
    try:
        found = await reading.projector_get("/v1/models", name=name, tag=tag, stage=stage, after=after,
                                            limit=PAGE_SIZE)
    except Refused as refused:
        return refusal_page(request, session, refused.status, refused.code, refused.message)
    aliases = {m["name"]: sorted(m["aliases"].items()) for m in found["models"]}
    return page(request, session, "models.html", title="Models", models=found["models"], aliases=aliases,
                next=found["next"], query={"name": name or "", "tag": tag or "", "stage": stage or ""},
                stages=SHOWN_STAGES, feed="/console/changes")


@router.get("/models/{name}")
async def model(request: Request, session: SignedIn, name: str):
    reading = Reads(request, session)
    try:
        found, versions, pending, history, live = await reading.gather(
            reading.projector_get(f"/v1/models/{name}"), reading.projector_get(f"/v1/models/{name}/versions"),
            reading.projector_get(f"/v1/models/{name}/transitions"), reading.projector_get(f"/v1/models/{name}/history"),
            reading.projector_get(f"/v1/models/{name}/serving"))
    except Refused as refused:
        return refusal_page(request, session, refused.status, refused.code, refused.message)
    state = await reading.model_state(name, at_seq=found["seq"])
    policy, whose = await reading.policy_in_force(state)
    by_stage = {s: [v for v in versions["versions"] if v["stage"] == s and not v["deleted"]] for s in SHOWN_STAGES}
    protected = {alias: held.protected for alias, held in state.aliases.items()} if state else {}
    aliases = sorted((a, v["version"], protected.get(a, False)) for v in versions["versions"] for a in v["aliases"])
    return page(request, session, "model.html", title=name, model=found, by_stage=by_stage, aliases=aliases,
                pending=pending["pending"], history=list(reversed(history["changes"])), policy=policy_sentences(policy),
                policy_whose=whose, live=live, feed=f"/console/changes?model={name}")


@router.get("/models/{name}/versions/{version}")
async def version(request: Request, session: SignedIn, name: str, version: VersionNumber):
    reading = Reads(request, session)
    try:
        found = await reading.projector_get(f"/v1/models/{name}/versions/{version}")
    except Refused as refused:
        return refusal_page(request, session, refused.status, refused.code, refused.message)
    production = await reading.maybe(reading.projector_get(f"/v1/models/{name}/stages/Production"))
    champion = max((production or {}).get("versions", []), key=lambda v: v["version"], default=None)
    if champion is not None and champion["version"] == version:
        champion = None
    tracking = request.app.state.settings.mlflow_tracking_uri
    run_link = f"{tracking.rstrip('/')}/#/runs/{found['run_id']}" if tracking and found.get("run_id") else None
    return page(request, session, "version.html", title=f"{name} version {version}", name=name, v=found,
                champion=champion, metrics=metric_rows(found, champion), run_link=run_link,
                feed=f"/console/changes?model={name}")


def metric_rows(candidate: dict, champion: dict | None) -> list[dict]:
    """Each metric of the version beside the champion's, and the difference."""
    theirs = (champion or {}).get("metrics", {})
    rows = []
    for metric in sorted(set(candidate.get("metrics", {})) | set(theirs)):
        mine, other = candidate.get("metrics", {}).get(metric), theirs.get(metric)
        delta = mine - other if mine is not None and other is not None else None
        rows.append({"metric": metric, "value": mine, "champion": other, "delta": delta})
    return rows


@router.get("/models/{name}/versions/{version}/artifact")
async def download(request: Request, session: SignedIn, name: str, version: VersionNumber):
    """The version's file, digest-checked on the way out as the API serves it."""
    try:
        authorize(session.identity, permissions.READER, name)
        return await reads.download_artifact(name, version, request, session.identity, presigned=False)
    except ApiError as refused:
        return refusal_page(request, session, refused.status, refused.code, refused.message)
