"""Wires the registrar: the artifact store, the command publisher, the outcome reader,
the record of refused writes."""

import asyncio
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from modelog_contract.schemas import contract
from modelog_platform import logs
from modelog_platform.adapters.commands import CommandPublisher
from modelog_platform.adapters.s3 import ArtifactStore
from modelog_platform.identity.http import Caller, install_verifier
from modelog_platform.identity.tokens import verifier_from_settings
from modelog_platform.settings import DENIALS_TOPIC
from modelog_platform.web import health_router, install_error_handlers, serve
from registrar import api, console, denials, lifecycle, mlflow, reads, store_errors
from registrar.denials import DenialLog
from registrar.identity import command_signer, install_write_limit, service_token
from registrar.mlflow.model_cache import ModelCache
from registrar.mlflow.read_fast_path import MlflowReadFastPath
from registrar.mlflow.sources import tracking_client
from registrar.outcomes import OutcomeClient
from registrar.reconciler import reconcile_forever
from registrar.settings import RegistrarSettings


def create_app(settings: RegistrarSettings | None = None, denials_topic: str = DENIALS_TOPIC) -> FastAPI:
    """`denials_topic`: where refused writes are recorded (another topic only
    for a test that needs the records' topic out of reach)."""
    settings = settings or RegistrarSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        install_verifier(app, verifier_from_settings(settings))  # no issuer configured: refuse to start
        app.state.artifacts = ArtifactStore(settings)
        app.state.publisher = CommandPublisher(settings, sign=command_signer(settings))
        app.state.outcomes = OutcomeClient(settings.url("projector"), auth=service_token(settings))
        app.state.mlflow_models = ModelCache(app.state.outcomes.http)
        app.state.tracking_http = tracking_client()
        await app.state.publisher.start()
        app.state.denials = DenialLog(app.state.publisher, settings.denials_per_minute, denials_topic)
        app.state.denials.start()
        # The reconciler deletes, so it runs as an identity of its own: the
        # registrar's may store and read artifacts but never remove one.
        orphans = ArtifactStore(settings, credentials=settings.s3_reconciler_credentials())
        reconciler = asyncio.create_task(reconcile_forever(
            orphans, app.state.outcomes.http, timedelta(seconds=settings.orphan_grace_s),
            settings.reconcile_every_s))
        try:
            yield
        finally:
            reconciler.cancel()
            await app.state.denials.stop()
            await app.state.publisher.stop()
            await app.state.mlflow_models.close()
            await app.state.outcomes.close()
            await app.state.tracking_http.aclose()

    app = FastAPI(title="modelog registrar", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    install_write_limit(app, settings)

    async def readiness() -> dict[str, bool]:
        await app.state.artifacts.ping()
        projector = await app.state.outcomes.http.get("/healthz")
        return {"s3": True, "kafka": app.state.publisher.producer.client.cluster.brokers() != set(),
                "projector": projector.status_code == 200}

    app.include_router(health_router(readiness))
    for module in (api, lifecycle, reads):
        app.include_router(module.router)

    @app.get("/v1/schemas", tags=["contract"])
    async def schemas(caller: Caller):
        """JSON Schema of the commands one may publish to modelog.commands, and of the events."""
        return JSONResponse(contract())

    install_error_handlers(app)
    store_errors.install(app)  # S3 away or full: 503 or 507, not 500
    mlflow.install(app)  # MLflow's routes, and MLflow's error bodies under its prefixes
    denials.install(app, also=(mlflow.errors.MlflowError,))
    console.install(app)  # the web pages under /console (docs/console.md)
    return app


def main() -> None:
    logs.configure("registrar")
    settings = RegistrarSettings()
    serve(MlflowReadFastPath(create_app(settings)), settings.host, settings.registrar_port)
