"""Wires the auditor: migrations, the exactly-once audit feed, the timeline API."""

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Query, Request

from modelog import logs
from modelog.adapters.projection import projection_running
from modelog.web import ApiError, health_router, install_error_handlers, serve
from auditor import store
from auditor.settings import AuditorSettings

MIGRATIONS = Path(__file__).parent / "migrations"
router = APIRouter(prefix="/v1/audit")


@router.get("/models/{name}/timeline")
async def model_timeline(name: str, request: Request, limit: int = Query(1000, ge=1, le=10000)):
    async with request.app.state.pool.acquire() as conn:
        events = await store.timeline(conn, name, limit)
    if not events:
        raise ApiError(404, "model_not_found", f"no events for model {name!r}")
    return {"model": name, "events": events}


def create_app(settings: AuditorSettings | None = None) -> FastAPI:
    settings = settings or AuditorSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with projection_running("auditor", settings, MIGRATIONS, store.record_event) as (pool, projection):
            app.state.pool, app.state.projection = pool, projection
            yield

    app = FastAPI(title="modelog auditor", lifespan=lifespan)

    async def readiness() -> dict[str, bool]:
        async with app.state.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return {"postgres": True, "partitions_assigned": app.state.projection.assigned.is_set()}

    app.include_router(health_router(readiness))
    app.include_router(router)
    install_error_handlers(app)
    return app


def main() -> None:
    logs.configure("auditor")
    settings = AuditorSettings()
    serve(create_app(settings), settings.host, settings.auditor_port)
