"""Console writes take the registrar's one write path: the form's fields
become a command through WriteContext with the session's identity, so the
same permission check, the same decider and the same read-your-writes
answer apply as for the API. A refusal is a page that says why; one the
registrar made before the command existed is recorded as a denial, as the
API's are."""

import json
from datetime import datetime, timezone

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from modelog_platform.web import ApiError
from registrar import denials
from registrar.console.pages import refusal_page
from registrar.console.sessions import CSRF_FIELD, Session, csrf_ok
from registrar.console.signin import safe_next
from registrar.writes import WriteContext


async def submitted(request: Request, session: Session, kind: type, model: str, back: str | None,
                    **fields) -> Response:
    """Decide the command; on acceptance, back to the page the form was on (303)."""
    form = await request.form()
    submitted_csrf = form.get(CSRF_FIELD)
    if not csrf_ok(session, submitted_csrf if isinstance(submitted_csrf, str) else None):
        return refusal_page(request, session, 403, "csrf_failed",
                            "This form was not sent from a page of your session (or the page is older than your "
                            "sign-in); reload the page and try again.", back=safe_next(back))
    identity = session.identity
    request.state.caller = identity  # who a refusal is recorded as
    try:
        request.app.state.write_limit(identity)
        write = WriteContext(request, identity, idempotency_key=None, if_match=None)
        response = await write.submit(write.command(kind, model, **fields))
    except ApiError as refused:
        if not getattr(request.state, "submitted", False):
            record_denial(request, refused)
        return refusal_page(request, session, refused.status, refused.code, refused.message,
                            rule_results=refused.details.get("rule_results"), back=safe_next(back))
    body = json.loads(bytes(response.body))
    if body.get("status") == "pending":
        return refusal_page(request, session, 202, "pending",
                            "The registry took the command but has not decided it yet; this page's live "
                            "view will show the outcome.", back=safe_next(back))
    return RedirectResponse(safe_next(back), 303)


def record_denial(request: Request, refused: ApiError) -> None:
    now = datetime.now(timezone.utc)
    try:
        request.app.state.denials.refused(
            denials.denial(request, refused.status, refused.code, refused.message, now), now)
    except Exception:  # the refusal is shown as it is, recorded or not
        denials.log.exception("denial of %s %s not recorded", request.method, request.url.path)
