"""Signing in and out of the console.

The local stack's way in is a one-time link: `modelog ui` presents a bearer
token to POST /console/sign-in/links and gets back a link that carries a
short-lived token the registrar signs (locally with the development issuer's
key) for the audience of sign-in links only. Opening it starts a session for
the identity the bearer token proved, and redirects to a clean URL: the link's
token never stays in the address bar, the history or a Referer. A link works
once; a second use is refused.
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from modelog_platform.identity.http import Caller
from modelog_platform.identity.tokens import InvalidToken, claims_for, sign
from registrar.console.pages import page, refusal_page
from registrar.console.sessions import Session, csrf_ok, current_session, end_session, start_session
from registrar.console.state import LINK_AUDIENCE, LINK_TTL_S, ConsoleState, NoSigningKey

router = APIRouter(prefix="/console", include_in_schema=False)
HOME = "/console/models"


class SignInRequired(Exception):
    """A page that needs a session was asked for without one."""


def console(request: Request) -> ConsoleState:
    return request.app.state.console


def signed_in(request: Request) -> Session:
    try:
        found = current_session(request)
    except NoSigningKey:
        found = None
    if found is None:
        raise SignInRequired()
    return found


SignedIn = Annotated[Session, Depends(signed_in)]


def to_sign_in(request: Request, error: Exception) -> RedirectResponse:
    asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/sign-in?next={quote(asked, safe='')}", 303)


def safe_next(target: str | None) -> str:
    """Only a console path of this origin: never an open redirect."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


@router.post("/sign-in/links", response_class=JSONResponse)
async def new_link(request: Request, caller: Caller, next: str | None = None):
    """A one-time sign-in link for the bearer token's identity (what `modelog ui` asks for)."""
    state = console(request)
    try:
        key = state.issuer.signing_key()
    except NoSigningKey as error:
        return JSONResponse({"error": {"code": "console_unavailable", "message": str(error)}}, 503)
    claims = claims_for(issuer=state.settings.identity_issuer, audience=LINK_AUDIENCE, subject=caller.subject,
                        roles=caller.roles, grants=caller.grants, ttl_s=LINK_TTL_S)
    link = str(request.url_for("use_link").include_query_params(token=sign(claims, key), next=safe_next(next)))
    return {"url": link, "subject": caller.subject, "roles": list(caller.roles), "expires_in_s": LINK_TTL_S}


@router.get("/sign-in/link", name="use_link")
async def use_link(request: Request, token: str = Query(...), next: str | None = None):
    state = console(request)
    try:
        identity = await run_in_threadpool(state.link_verifier.verify, token)
    except (InvalidToken, NoSigningKey) as error:
        return no_store(refusal_page(request, None, 401, "sign_in_refused", f"This sign-in link proves nothing: {error}. "
                                     "Ask for a new one with `modelog ui`."))
    if not state.used_links.first_use(identity.token_id, identity.expires_at.timestamp()):
        return no_store(refusal_page(request, None, 401, "link_used",
                                     "This sign-in link was used already; a link works once. "
                                     "Ask for a new one with `modelog ui`."))
    response = RedirectResponse(safe_next(next), 303)
    start_session(request, response, identity)
    return no_store(response)


def no_store(response):
    """The link's answer names its token in the URL: kept by no cache and sent on as no Referer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str | None = None):
    try:
        session = current_session(request)
    except NoSigningKey:
        session = None
    return page(request, session, "sign_in.html", status=200 if session else 401,
                title="Sign in", next=safe_next(next), can_sign=console(request).can_sign,
                oidc=bool(console(request).settings.oidc_issuer))


@router.post("/sign-out")
async def sign_out(request: Request, session: SignedIn, csrf_token: Annotated[str | None, Form()] = None):
    if not csrf_ok(session, csrf_token):
        return refusal_page(request, session, 403, "csrf", "The form had expired; reload the page and try again.")
    response = RedirectResponse("/console/sign-in", 303)
    end_session(request, response)
    return response
