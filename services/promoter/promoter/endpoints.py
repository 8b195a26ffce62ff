"""The promoter's HTTP endpoints: health, readiness with each partition's
snapshots, and its status. The decider loop runs before they do (promoter.main)."""

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI

from modelog_platform.web import health_router, serve_here
from promoter.loop import Promoter
from promoter.settings import PromoterSettings
from promoter.status import snapshot_report


def create_app(promoter: Promoter, deciding: asyncio.Task) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        # SIGTERM: uvicorn stops serving, then the loop ends its transactions' producers and leaves.
        deciding.cancel()
        await asyncio.gather(deciding, return_exceptions=True)

    app = FastAPI(title="modelog promoter", lifespan=lifespan)

    async def readiness() -> dict:
        ready = promoter.ready.is_set() and bool(promoter.deciders) and promoter.default_policy.caught_up.is_set()
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


async def serve(promoter: Promoter, deciding: asyncio.Task, settings: PromoterSettings) -> None:
    await serve_here(create_app(promoter, deciding), settings.host, settings.promoter_port)
