"""The trail: a model's hash-chained timeline from the auditor, each event
expandable, the chain checked here again (each event's hash recomputed from
its predecessor's) and the latest seal shown to those who may read seals."""

import json

from fastapi import APIRouter, Query, Request

from modelog_contract.domain.chain import GENESIS_HASH, link_problem
from registrar.console.pages import page, refusal_page
from registrar.console.reading import Reads, Refused
from registrar.console.signin import SignedIn

router = APIRouter(prefix="/console", include_in_schema=False)
EVENTS_PER_PAGE = 200


@router.get("/models/{name}/trail")
async def trail(request: Request, session: SignedIn, name: str, after_seq: int = Query(0, ge=0)):
    reading = Reads(request, session)
    # One event before the page too: the page's first link is checked against it.
    start = max(after_seq - 1, 0)
    try:
        found = await reading.auditor_get(f"/v1/audit/models/{name}/timeline", after_seq=start,
                                          limit=EVENTS_PER_PAGE + (after_seq - start))
    except Refused as refused:
        return refusal_page(request, session, refused.status, refused.code, refused.message)
    events = found["events"]
    head_seq, head_hash = 0, GENESIS_HASH
    if after_seq and events and events[0]["seq"] == after_seq:
        head_seq, head_hash = events[0]["seq"], events[0]["hash"]
        events = events[1:]
    problem = None
    for event in events:
        if problem := link_problem(head_seq, head_hash, event):
            problem = f"seq {event['seq']}: {problem}"
            break
        head_seq, head_hash = event["seq"], event["hash"]
    seals = await reading.maybe(reading.auditor_get("/v1/audit/seals"))
    latest = seals["seals"][-1] if seals and seals["seals"] else None
    shown = [{"event": e, "json": json.dumps(e, indent=2, sort_keys=True)} for e in events]
    following = events[-1]["seq"] if len(events) == EVENTS_PER_PAGE else None
    return page(request, session, "trail.html", title=f"{name}: trail", name=name, events=shown,
                problem=problem, first_seq=events[0]["seq"] if events else None, last_seq=head_seq,
                seal=latest, seals_readable=seals is not None, next_after=following,
                feed=f"/console/changes?model={name}")
