"""Wires the promoter: the decider loop and its health endpoints."""

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI

from modelog_platform import logs, metrics
from modelog_platform.tasks import start_critical
from modelog_platform.web import health_router, serve
from promoter.loop import Promoter
from promoter.settings import PromoterSettings


def create_app(settings: PromoterSettings | None = None) -> FastAPI:
    settings = settings or PromoterSettings()
    promoter = Promoter(settings)
    metrics.on_scrape("promoter", promoter.report_metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        task = start_critical(promoter.run(), "decider loop")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    app = FastAPI(title="modelog promoter", lifespan=lifespan)

    async def readiness() -> dict:
        ready = promoter.ready.is_set() and bool(promoter.deciders)
        return {"partitions_restored": ready, **({} if ready else {"progress": promoter.restoring}),
                "snapshots": promoter.snapshot_report()}

    app.include_router(health_router(readiness))

    @app.get("/v1/status")
    async def status():
        return {"partitions": sorted(promoter.deciders), "decided": promoter.decided,
                "next_offsets": {p: d.next_offset for p, d in sorted(promoter.deciders.items())},
                # Per partition: the snapshot its restore used (null: the whole
                # log), those refused and why, the newest written and its age.
                "snapshots": promoter.snapshot_report()}

    return app


def main() -> None:
    logs.configure("promoter")
    settings = PromoterSettings()
    serve(create_app(settings), settings.host, settings.promoter_port)
