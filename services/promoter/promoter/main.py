"""Wires the promoter: the decider loop and its health endpoints."""

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI

from modelog_platform import logs, metrics
from modelog_platform.tasks import start_critical
from modelog_platform.web import health_router, serve
from promoter.loop import Promoter
from promoter.settings import PromoterSettings
from promoter.status import report_metrics, snapshot_report


def create_app(settings: PromoterSettings | None = None) -> FastAPI:
    settings = settings or PromoterSettings()
    promoter = Promoter(settings)
    metrics.on_scrape("promoter", lambda: report_metrics(promoter))

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
                "snapshots": snapshot_report(promoter)}

    app.include_router(health_router(readiness))

    @app.get("/v1/status")
    async def status():
        return {"partitions": sorted(promoter.deciders), "decided": promoter.decided,
                "next_offsets": {p: d.next_offset for p, d in sorted(promoter.deciders.items())},
                # Per partition: the snapshot its restore used (null: the whole
                # log), those refused and why, the newest written and its age.
                "snapshots": snapshot_report(promoter)}

    return app


def main() -> None:
    logs.configure("promoter")
    settings = PromoterSettings()
    serve(create_app(settings), settings.host, settings.promoter_port)
