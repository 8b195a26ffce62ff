"""Wires the auditor: migrations, the exactly-once audit feed (with its
checkpoints), the registrar's denials, the query API."""

import asyncio
from pathlib import Path

from fastapi import FastAPI

from auditor import store
from auditor.api import router
from auditor.checkpoints import CheckpointWriter
from auditor.denials import DenialsConsumer
from auditor.replays import StateReplays
from auditor.sealing import Sealer
from auditor.settings import AuditorSettings
from modelog_platform import logs, metrics
from modelog_platform.adapters.log_reader import IN_BATCHES
from modelog_platform.projection_service import projection_app
from modelog_platform.web import serve

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: AuditorSettings | None = None) -> FastAPI:
    settings = settings or AuditorSettings()
    sealer = Sealer(settings)

    async def beside_the_projection(pool) -> None:
        await asyncio.gather(sealer.every_period(pool), DenialsConsumer(settings, pool).run_forever())

    # Events are recorded with a checkpoint of their model every so often, in one transaction.
    recorder = CheckpointWriter(settings.audit_checkpoint_every)
    app = projection_app("auditor", settings, MIGRATIONS, recorder.record_batch, router,
                         background=lambda app: beside_the_projection(app.state.pool),
                         refuse=store.record_unproven, refused_summary=store.alerts_summary,
                         # Nobody's answer waits on the trail: let the broker fill fetches.
                         fetching=IN_BATCHES)
    app.state.replays, app.state.sealer = StateReplays(settings.audit_checkpoint_every), sealer
    metrics.on_scrape("auditor seals", lambda: sealer.report_metrics(app.state.pool))
    return app


def main() -> None:
    logs.configure("auditor")
    settings = AuditorSettings()
    serve(create_app(settings), settings.host, settings.auditor_port)
