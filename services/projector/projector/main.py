"""Wires the projector: migrations, the exactly-once projection loop, the query API."""

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from modelog import logs
from modelog.adapters.projection import projection_running
from modelog.web import health_router, install_error_handlers, serve
from projector.api import router
from projector.read_models import apply_event
from projector.settings import ProjectorSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ProjectorSettings | None = None) -> FastAPI:
    settings = settings or ProjectorSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with projection_running("projector", settings, MIGRATIONS, apply_event) as (pool, projection):
            app.state.pool, app.state.projection = pool, projection
            yield

    app = FastAPI(title="modelog projector", lifespan=lifespan)
    app.state.settings = settings

    async def readiness() -> dict[str, bool]:
        async with app.state.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return {"postgres": True, "partitions_assigned": app.state.projection.assigned.is_set()}

    app.include_router(health_router(readiness))
    app.include_router(router)
    install_error_handlers(app)
    return app


def main() -> None:
    logs.configure("projector")
    settings = ProjectorSettings()
    serve(create_app(settings), settings.host, settings.projector_port)
