"""Starts the promoter: the decider loop first, its HTTP endpoints beside it.

Restart time is time the promoter's partitions decide nothing. The web stack
(FastAPI, uvicorn) is the largest of its imports, so it is imported in a
thread while the loop already joins its group and reads its snapshots and the
log, which is mostly waiting on Kafka and S3."""

import asyncio
import importlib

import uvloop

from modelog_platform import logs, metrics
from modelog_platform.tasks import start_critical
from promoter.loop import Promoter
from promoter.settings import PromoterSettings
from promoter.status import report_metrics


async def run(settings: PromoterSettings) -> None:
    promoter = Promoter(settings)
    metrics.on_scrape("promoter", lambda: report_metrics(promoter))
    deciding = start_critical(promoter.run(), "decider loop")
    endpoints = await asyncio.to_thread(importlib.import_module, "promoter.endpoints")
    await endpoints.serve(promoter, deciding, settings)


def main() -> None:
    logs.configure("promoter")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(PromoterSettings()))
