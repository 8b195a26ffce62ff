"""Wires the projector: migrations, the exactly-once projection loop, the query API."""

import asyncio
from pathlib import Path

from fastapi import FastAPI

from modelog_platform import logs
from modelog_platform.adapters.postgres import connect
from modelog_platform.adapters.s3 import ArtifactStore
from modelog_platform.projection_service import projection_app
from modelog_platform.web import serve
from projector import live_where, model_views, traffic_split_api, webhooks_api
from projector.api import router
from projector.lookup_fast_path import LookupFastPath
from projector.outcome_wakeups import OutcomeWakeups
from projector.read_models import apply_batch, quarantine, quarantined
from projector.serving import ServingAnswers
from projector.settings import ProjectorSettings
from projector.webhooks import Deliverer

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ProjectorSettings | None = None) -> FastAPI:
    settings = settings or ProjectorSettings()
    login = settings.postgres()
    wakeups = OutcomeWakeups(lambda: connect(login))
    app = projection_app("projector", settings, MIGRATIONS, apply_batch, router, deliver_webhooks,
                         refuse=quarantine, refused_summary=quarantined, committed=wakeups.committed)
    app.include_router(webhooks_api.router)
    app.include_router(traffic_split_api.router)
    app.include_router(live_where.router)
    app.include_router(model_views.router)
    # Presigns download URLs for serving systems; reads models' seqs over a connection of its own.
    app.state.serving = ServingAnswers(ArtifactStore(settings), lambda: connect(login))
    app.state.outcome_wakeups = wakeups
    return app


async def deliver_webhooks(app: FastAPI) -> None:
    """Beside the projection: webhook deliveries, and listening for committed outcomes."""
    await asyncio.gather(Deliverer(app.state.pool).run_forever(), app.state.outcome_wakeups.run())


def main() -> None:
    logs.configure("projector")
    settings = ProjectorSettings()
    serve(LookupFastPath(create_app(settings)), settings.host, settings.projector_port)
