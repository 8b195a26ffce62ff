"""Wires the registrar: the artifact store, the command publisher, the outcome reader."""

from contextlib import asynccontextmanager

from fastapi import FastAPI

from modelog import logs
from modelog.adapters.s3 import ArtifactStore
from modelog.web import health_router, install_error_handlers, serve
from registrar.api import router
from modelog.adapters.commands import CommandPublisher
from modelog.identity.dev import local_signer
from registrar.outcomes import OutcomeClient
from registrar.settings import RegistrarSettings


def create_app(settings: RegistrarSettings | None = None) -> FastAPI:
    settings = settings or RegistrarSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.artifacts = ArtifactStore(settings)
        # Until callers' tokens are forwarded, the local stack signs for them.
        app.state.publisher = CommandPublisher(settings, sign=local_signer())
        app.state.outcomes = OutcomeClient(settings.projector_url)
        await app.state.publisher.start()
        try:
            yield
        finally:
            await app.state.publisher.stop()
            await app.state.outcomes.close()

    app = FastAPI(title="modelog registrar", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings

    async def readiness() -> dict[str, bool]:
        await app.state.artifacts.ping()
        projector = await app.state.outcomes.http.get("/healthz")
        return {"s3": True, "kafka": app.state.publisher.producer.client.cluster.brokers() != set(),
                "projector": projector.status_code == 200}

    app.include_router(health_router(readiness))
    app.include_router(router)
    install_error_handlers(app)
    return app


def main() -> None:
    logs.configure("registrar")
    settings = RegistrarSettings()
    serve(create_app(settings), settings.host, settings.registrar_port)
