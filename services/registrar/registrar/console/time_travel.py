"""The trail's two questions an auditor asks most, on pages of their own:

- as of: the model as it stood at an instant (or after a seq), as the
  auditor replays it, and what changed from then to now, in words;
- why: why a version is in its stage, the chain of events that put it there.

The auditor answers both (`/state`, `/diff`, `/why`); these pages only ask it
with the person's authority and say its answers in words. An instant typed
into the form has no zone: it is read as UTC, the zone every console page
shows times in."""

from datetime import datetime, timezone

from fastapi import APIRouter, Request

from modelog_platform.web import VersionNumber
from registrar.console.pages import page, refusal_page
from registrar.console.reading import Reads, Refused
from registrar.console.signin import SignedIn

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/models/{name}/as-of")
async def as_of(request: Request, session: SignedIn, name: str, at: str = "", seq: str = ""):
    reading = Reads(request, session)
    back = f"/console/models/{name}/trail"
    at, seq = at.strip(), seq.strip()
    if not at and not seq:
        return page(request, session, "as_of.html", title=f"{name} as of…", name=name, asked=None,
                    at_value="", seq_value="")
    if at and seq:
        return refusal_page(request, session, 400, "invalid_point",
                            "Ask for one point in the model's history: an instant or a seq, not both.", back=back)
    if seq and not (seq.isascii() and seq.isdigit()):
        return refusal_page(request, session, 400, "invalid_point",
                            f"A seq is a whole number, the position of an event in the trail; {seq!r} is not one.",
                            back=back)
    try:
        found = await reading.auditor_get(f"/v1/audit/models/{name}/state", at=as_utc(at), seq=seq)
        # From the seq the instant fell at: the diff starts at exactly the state shown.
        changes = await reading.auditor_get(f"/v1/audit/models/{name}/diff", **{
            "from": str(found["seq"]), "to": datetime.now(timezone.utc).isoformat()})
    except Refused as refused:
        return refusal_page(request, session, refused.status, refused.code, refused.message, back=back)
    state = found["state"]
    asked = f"seq {seq}" if seq else shown(as_utc(at))
    return page(request, session, "as_of.html", title=f"{name} as of {asked}", name=name, asked=asked,
                state=state, seq=found["seq"], versions=sorted(state["versions"].values(), key=lambda v: v["version"]),
                aliases=sorted((a, held["version"], held["protected"]) for a, held in state["aliases"].items()),
                pending=list(state["pending"].values()), changes=[change_words(c) for c in changes["changes"]],
                to_seq=changes["to_seq"], at_value=form_value(as_utc(at)) if at else "", seq_value=seq,
                feed=f"/console/changes?model={name}")


@router.get("/models/{name}/versions/{version}/why")
async def why(request: Request, session: SignedIn, name: str, version: VersionNumber):
    reading = Reads(request, session)
    try:
        found = await reading.auditor_get(f"/v1/audit/models/{name}/versions/{version}/why")
    except Refused as refused:
        return refusal_page(request, session, refused.status, refused.code, refused.message,
                            back=f"/console/models/{name}")
    return page(request, session, "why.html", title=f"Why {name} version {version} is in {stage_name(found['stage'])}",
                name=name, version=version, w=found, feed=f"/console/changes?model={name}")


def as_utc(text: str) -> str:
    """A datetime-local value ('2026-03-01T09:14:05.250') carries no zone: UTC,
    said explicitly so the auditor reads the same instant. Text with a zone, or
    that is no instant at all, goes on as typed: the auditor judges it."""
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        return text
    return (instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)).isoformat()


def utc(instant: str) -> datetime:
    return datetime.fromisoformat(instant).astimezone(timezone.utc)


def form_value(instant: str) -> str:
    """The instant as a datetime-local input shows it again: UTC, no zone, to the millisecond."""
    at = utc(instant)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}"


def shown(instant: str) -> str:
    at = utc(instant)
    return at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d} UTC"


def stage_name(stage: str) -> str:
    return "no stage" if stage == "None" else stage


def change_words(change: dict) -> dict:
    """One change of the diff in a sentence, beside the auditor's own text."""
    return {"words": sentence(change["path"].split("."), change["kind"], change.get("before"), change.get("after")),
            "text": change["text"]}


def sentence(path: list[str], kind: str, before, after) -> str:
    match path, kind:
        case ["versions", n], "added":
            return f"v{n} was registered by {after['registered_by']}, in {stage_name(after['stage'])}."
        case ["versions", n, "stage"], "changed":
            return f"v{n} moved from {stage_name(before)} to {stage_name(after)}."
        case ["versions", n, "deleted"], "changed":
            return f"v{n} was deleted." if after else f"v{n} was restored."
        case ["aliases", alias], "added":
            return f"@{alias} was set to v{after['version']}."
        case ["aliases", alias], "removed":
            return f"@{alias} was removed (it pointed at v{before['version']})."
        case ["aliases", alias, "version"], "changed":
            return f"@{alias} moved from v{before} to v{after}."
        case ["aliases", alias, "protected"], "changed":
            return f"@{alias} became {'protected' if after else 'unprotected'}."
        case ["pending", _], "added":
            return (f"{after['requested_by']} requested v{after['version']} to {stage_name(after['to_stage'])}; "
                    "it was waiting for approval.")
        case ["pending", _], "removed":
            return f"The request for v{before['version']} to {stage_name(before['to_stage'])} no longer waits."
        case ["settled", _], "removed":
            return (f"An old settled request (v{before['version']} to {stage_name(before['to_stage'])}) left the "
                    "model's state, which keeps only the latest; the trail keeps its whole story.")
        case ["settled", _], "added":
            approvers = f", approved by {', '.join(after['approvers'])}" if after.get("approvers") else ""
            return (f"The request for v{after['version']} to {stage_name(after['to_stage'])} was settled: "
                    f"{after['outcome'].replace('_', ' ')}, by {after['by']}{approvers}.")
        case ["policy", *_], _:
            return "The model's own policy changed."
        case ["exists"], "changed":
            return "The model was created." if after else "The model no longer exists."
        case ["deleted"], "changed":
            return "The model was deleted." if after else "The model was restored."
    what = " ".join(path)
    match kind:
        case "added":
            return f"{what} was set to {after!r}."
        case "removed":
            return f"{what} was removed (it was {before!r})."
    return f"{what} changed from {before!r} to {after!r}."
