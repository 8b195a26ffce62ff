"""Rendering a console page: the template, the signed-in person, the
refusal in plain words. Every refusal is a page with the decider's or the
registrar's reason, never a stack trace or a blank page."""

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from modelog_contract.domain.reasons import Reason
from modelog_platform.identity.permissions import effective_roles
from registrar.console.markdown import rendered
from registrar.console.sessions import CSRF_FIELD, Session


def page(request: Request, session: Session | None, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    templates = request.app.state.console.templates
    who = session.identity if session else None
    html = templates.get_template(template).render(
        request=request, session=session, who=who, csrf_field=CSRF_FIELD,
        csrf=session.csrf if session else "", roles=sorted(effective_roles(who.roles)) if who else [],
        markdown=rendered, **context)
    return HTMLResponse(html, status)


def meaning(code: str) -> str | None:
    try:
        return Reason(code).meaning
    except ValueError:
        return None


def refusal_page(request: Request, session: Session | None, status: int, code: str, message: str,
                 rule_results: list[dict] | None = None, back: str | None = None) -> HTMLResponse:
    return page(request, session, "refused.html", status=status, title="Refused", code=code, message=message,
                meaning=meaning(code), rule_results=rule_results or [], back=back)
