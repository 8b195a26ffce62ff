"""Wires the projector: migrations, the exactly-once projection loop, the query API."""

from pathlib import Path

from fastapi import FastAPI

from modelog import logs
from modelog.web import projection_app, serve
from projector.api import router
from projector.read_models import apply_event
from projector.settings import ProjectorSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ProjectorSettings | None = None) -> FastAPI:
    return projection_app("projector", settings or ProjectorSettings(), MIGRATIONS, apply_event, router)


def main() -> None:
    logs.configure("projector")
    settings = ProjectorSettings()
    serve(create_app(settings), settings.host, settings.projector_port)
