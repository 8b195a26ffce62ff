"""Wires the auditor: migrations, the exactly-once audit feed, the query API."""

from pathlib import Path

from fastapi import FastAPI

from modelog import logs
from modelog.web import projection_app, serve
from auditor import store
from auditor.api import router
from auditor.replays import StateReplays
from auditor.settings import AuditorSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: AuditorSettings | None = None) -> FastAPI:
    app = projection_app("auditor", settings or AuditorSettings(), MIGRATIONS, store.record_event, router)
    app.state.replays = StateReplays()
    return app


def main() -> None:
    logs.configure("auditor")
    settings = AuditorSettings()
    serve(create_app(settings), settings.host, settings.auditor_port)
