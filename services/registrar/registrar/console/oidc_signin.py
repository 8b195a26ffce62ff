"""Signing in to the console through the configured OpenID Connect issuer.

GET /console/sign-in/oidc sends the browser to the issuer with a fresh state,
nonce and PKCE challenge (registrar/console/oidc.py); what the callback needs
to check the return (the state, the nonce, the PKCE verifier, where to go
next) stays in a short-lived HttpOnly cookie the registrar signs, never in a
URL. GET /console/callback checks the return, exchanges the code, verifies
the ID token and starts the same session a one-time link starts
(sessions.start_session), then redirects to a clean console URL, so the code
and state leave the address bar at once.
"""

import time

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from modelog_platform.identity.oidc import SignInRefused
from registrar.console.oidc import PendingSignIn
from registrar.console.pages import refusal_page
from registrar.console.sessions import COOKIE_PATH, start_session
from registrar.console.signin import no_store, safe_next
from registrar.console.state import NoSigningKey

router = APIRouter(prefix="/console", include_in_schema=False)

PENDING_COOKIE = "modelog_oidc_pending"
# Long enough to type a password at the issuer, short enough that a stolen
# cookie is soon worth nothing.
PENDING_TTL_S = 600


def not_configured(request: Request):
    return refusal_page(request, None, 404, "oidc_not_configured",
                        "This registrar has no OpenID Connect issuer configured (MODELOG_OIDC_ISSUER). "
                        "Sign in with a one-time link from `modelog ui`, or ask your platform team to "
                        "configure the issuer (docs/identity.md).")


@router.get("/sign-in/oidc")
async def begin(request: Request, next: str | None = None):
    client = request.app.state.console.oidc
    if client is None:
        return not_configured(request)
    try:
        key = request.app.state.console.session_key
        url, pending = await client.begin()
    except NoSigningKey as error:
        return refusal_page(request, None, 503, "console_unavailable", str(error))
    except SignInRefused as refused:
        return refusal_page(request, None, 503, refused.code, f"{refused}")
    kept = {**pending.as_dict(), "next": safe_next(next), "exp": int(time.time() + PENDING_TTL_S)}
    response = RedirectResponse(url, 303)
    # SameSite=Lax: the browser's return from the issuer is a top-level GET,
    # which carries it; no other site's request does.
    response.set_cookie(PENDING_COOKIE, key.seal(kept), max_age=PENDING_TTL_S, path=COOKIE_PATH,
                        httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return no_store(response)


@router.get("/callback")
async def callback(request: Request):
    client = request.app.state.console.oidc
    if client is None:
        return not_configured(request)
    try:
        kept = request.app.state.console.session_key.open(request.cookies.get(PENDING_COOKIE, ""))
    except NoSigningKey as error:
        return refusal_page(request, None, 503, "console_unavailable", str(error))
    if kept is None or not isinstance(kept.get("exp"), int) or kept["exp"] <= time.time():
        return _refused(request, "sign_in_expired",
                        "This browser started no sign-in here, or took more than ten minutes over it. "
                        "Sign in again from /console/sign-in.")
    try:
        identity = await client.finish(PendingSignIn.from_dict(kept), request.query_params)
    except SignInRefused as refused:
        return _refused(request, refused.code, f"{refused}")
    response = _forgetting_the_sign_in(request, RedirectResponse(safe_next(kept.get("next")), 303))
    start_session(request, response, identity)
    return response


def _refused(request: Request, code: str, message: str):
    return _forgetting_the_sign_in(request, refusal_page(request, None, 401, code, message))


def _forgetting_the_sign_in(request: Request, response):
    """A finished sign-in, or a refused one, leaves nothing to resume."""
    response.delete_cookie(PENDING_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")
    return no_store(response)

