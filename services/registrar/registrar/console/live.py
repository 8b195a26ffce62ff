"""Live pages: the projector's change feed (SSE), passed through to the
browser with the session's authority, so a page's script can follow it with
EventSource (which sends no Authorization header). Only the events of models
the person may read arrive: the projector filters by their grants. Each
event is sent as a plain `message` (its type stays in the data), so a page
needs one listener; a reconnect's Last-Event-ID resumes where it left off."""

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from registrar.console.reading import Reads
from registrar.console.signin import SignedIn

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/changes")
async def changes(request: Request, session: SignedIn, model: str | None = None,
                  last_event_id: str | None = Header(None)):
    reading = Reads(request, session)
    headers = dict(reading.headers)
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    params = {"model": model} if model else {}

    async def relayed():
        async with reading.projector.stream("GET", "/v1/changes", params=params, headers=headers,
                                            timeout=None) as upstream:
            if upstream.status_code != 200:
                yield "event: refused\ndata: {}\n\n"
                return
            async for line in upstream.aiter_lines():
                if not line.startswith("event:"):
                    yield line + "\n"

    return StreamingResponse(relayed(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
