"""Wires the auditor: migrations, the exactly-once audit feed, the timeline API."""

from pathlib import Path

from fastapi import APIRouter, FastAPI, Query, Request

from modelog import logs
from modelog.web import ApiError, projection_app, serve
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
    return projection_app("auditor", settings or AuditorSettings(), MIGRATIONS, store.record_event, router)


def main() -> None:
    logs.configure("auditor")
    settings = AuditorSettings()
    serve(create_app(settings), settings.host, settings.auditor_port)
