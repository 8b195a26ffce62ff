"""The HTTP service around an exactly-once projection of modelog.events: the
projector and the auditor are each one, with an API over their rows."""

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from modelog_platform import metrics
from modelog_platform.adapters.log_reader import AT_ONCE, Fetching
from modelog_platform.adapters.postgres import UNAVAILABLE
from modelog_platform.adapters.projection import Committed, Refuse, projection_running
from modelog_platform.identity.http import install_verifier
from modelog_platform.identity.tokens import verifier_from_settings
from modelog_platform.log_signing import trusted_keys
from modelog_platform.tasks import start_critical
from modelog_platform.web import error_body, health_router, install_error_handlers

RefusedSummary = Callable[[Any], Coroutine[Any, Any, dict[str, Any]]]


def projection_app(name: str, settings, migrations, apply, router: APIRouter,
                   background: Callable[[FastAPI], Coroutine[Any, Any, None]] | None = None, *,
                   refuse: Refuse, refused_summary: RefusedSummary, fetching: Fetching = AT_ONCE,
                   committed: Committed | None = None) -> FastAPI:
    """A service that is an exactly-once projection of modelog.events plus an API
    over its rows (the projector, the auditor): wiring, health and errors.
    `settings`: the service's own (engine endpoints, identity, the log writer's
    trusted keys). Its routes need a bearer token, verified as the registrar
    does (every route but /healthz and /readyz). `background(app)` runs beside
    the projection once the pool is up. An event the writer did not sign goes
    to `refuse`; `refused_summary(conn)` says on /readyz how many and the newest.
    `fetching`: at once where someone waits on the projection, in batches for a follower.
    `committed(batch)`: told of each batch once it has committed."""
    trusted = trusted_keys(settings)  # read now: a reader that trusts no writer does not start
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        install_verifier(app, verifier_from_settings(settings))  # no issuer configured: refuse to start
        async with projection_running(name, settings, migrations, apply, trusted, refuse, fetching,
                                      committed) as (pool, projection):
            app.state.pool, app.state.projection = pool, projection
            metrics.on_scrape(name, lambda: metrics.PROJECTION_LAG.labels(name).set(projection.lag()))
            task = start_critical(background(app), f"{name} background work") if background else None
            try:
                yield
            finally:
                if task:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

    app = FastAPI(title=f"modelog {name}", lifespan=lifespan)
    app.state.settings, app.state.trusted_keys = settings, trusted

    async def readiness() -> dict[str, bool | list[int] | dict[str, Any]]:
        async with app.state.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
            refused = await refused_summary(conn)
        projection = app.state.projection
        # `partitions`: this instance's share, where several run as one group.
        # `unproven_events` is reported, not a readiness check: a forged event
        # changed nothing here, so what is served is still right; taking
        # serving down would hand whoever can write to the log an outage.
        # The alert pages (an error log line per event; this count to poll).
        return {"postgres": True, "partitions_assigned": projection.assigned.is_set(),
                "partitions": projection.partitions, "unproven_events": refused}

    app.include_router(health_router(readiness))
    app.include_router(router)
    install_error_handlers(app)
    for lost in UNAVAILABLE:
        app.add_exception_handler(lost, database_unavailable)
    return app


async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
    """PostgreSQL down or restarting: the caller may ask again shortly; not a server bug."""
    return JSONResponse(error_body("database_unavailable", f"the read models' database is unavailable "
                                   f"({type(error).__name__}); retry shortly"), 503, headers={"Retry-After": "2"})
