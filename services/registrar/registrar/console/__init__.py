"""The console: modelog's web pages for reviewers, operators, data scientists
and auditors, served by the registrar under /console.

Server-rendered HTML that reads without JavaScript; a small script follows
the change feed and refreshes what changed. It reads with the signed-in
person's authority and writes through the registrar's one write path
(docs/decisions/0009-the-console.md)."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from registrar.console import approvals, browse, live, oidc_signin, operate, signin, time_travel, trail
from registrar.console.security import ConsoleHeaders
from registrar.console.state import ConsoleState

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """The console's routes, its static files and its headers on `app`."""
    app.state.console = ConsoleState(app.state.settings)
    for module in (signin, oidc_signin, browse, approvals, operate, trail, time_travel, live):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(signin.SignInRequired, signin.to_sign_in)
    app.add_middleware(ConsoleHeaders)
