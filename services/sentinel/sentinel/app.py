"""Wires the sentinel as a Faust app: the signals topic, the windows table
(changelogged to Kafka, so a restart resumes its sums), an agent that sums
batches into it, a timer that judges closed windows and asks for decisions,
and a small HTTP API on Faust's own web server (MODELOG_SENTINEL_PORT),
/metrics among it.

Why Faust here and not in the promoter: docs/decisions/0010.
"""

import logging
import time
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context
from faust.web import Request, Response, View

from modelog_platform.adapters.log_reader import model_partition
from modelog_platform.identity.dev import DevIssuer
from modelog_platform.identity.roles import OPERATOR
from modelog_platform.identity.service import ServiceToken
from modelog_platform.log_signing import trusted_keys
from modelog_platform.metrics import metrics_response
from modelog_platform.settings import SIGNALS_TOPIC, StackHome
from sentinel import metrics
from sentinel.book import Book
from sentinel.core import Judged, Sentinel, one_per_change
from sentinel.decisions import Registrar
from sentinel.follower import Follower
from sentinel.settings import SERVICE_SUBJECT, SentinelSettings

log = logging.getLogger("sentinel")


def broker_credentials(settings: SentinelSettings) -> faust.SASLCredentials | None:
    if settings.kafka_security_protocol != "SASL_SSL":
        return None
    credentials = settings.kafka_credentials()
    return faust.SASLCredentials(username=credentials.username, password=credentials.password,
                                 ssl_context=create_ssl_context(cafile=str(settings.kafka_ca())),
                                 mechanism="SCRAM-SHA-512")


def recovered(app: faust.App) -> bool:
    """Whether the windows table is read back from its changelog (Faust types its recovery loosely)."""
    tables: Any = app.tables
    return bool(tables.recovery.completed.is_set())


def create_app(settings: SentinelSettings) -> faust.App:
    # Faust keeps a directory of its own: in the stack's home, not wherever the sentinel was started.
    datadir = StackHome().home / "sentinel"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.sentinel_consumer_group, broker=[f"kafka://{b}" for b in settings.kafka_bootstrap.split(",")],
        broker_credentials=broker_credentials(settings), store="memory://",
        topic_partitions=settings.topic_partitions, topic_replication_factor=1,
        consumer_auto_offset_reset="earliest", web_port=settings.sentinel_port, web_bind=settings.host,
        web_host=settings.host, web_in_thread=False, processing_guarantee="at_least_once",
        # A killed worker holds its partitions until its session times out (Faust's default: 60 s);
        # the broker's minimum lets a restarted sentinel take them back within seconds.
        broker_session_timeout=6.0, broker_heartbeat_interval=1.5, datadir=str(datadir),
        consumer_max_fetch_size=settings.sentinel_fetch_bytes)
    signals = app.topic(SIGNALS_TOPIC, key_serializer="raw", value_serializer="raw",
                        partitions=settings.topic_partitions)
    table = app.Table("windows", default=None, partitions=settings.topic_partitions)  # JSON keys and values
    book = Book()
    follower = Follower(settings, trusted_keys(settings), book, snapshot=datadir / "book",
                        snapshot_every_s=settings.sentinel_snapshot_every_s)

    def changelog(partition: int, key: str, value: Any) -> None:
        # Written for the signal's own partition, which a batch from many partitions cannot take from Faust's context.
        if value is None:
            table.send_changelog(partition, key, None, value_serializer="raw")
        else:
            table.send_changelog(partition, key, value)

    sentinel = Sentinel(table.data, changelog, book, settings.sentinel_window_s, settings.sentinel_grace_s,
                        settings.sentinel_windows_kept)
    issuer = DevIssuer.local(settings, settings)
    registrar = Registrar(settings.url("registrar"), ServiceToken(issuer, SERVICE_SUBJECT, (OPERATOR,)))
    state: dict[str, Any] = {"indexed": False, "unsettled": []}

    def ready() -> bool:
        return follower.caught_up.is_set() and recovered(app) and state["indexed"]

    @app.task
    async def follow_the_log() -> None:
        await follower.run()

    @app.agent(signals)
    async def aggregate(stream: faust.StreamT) -> None:
        batches: Any = stream  # a faust.Stream, whose take_events StreamT does not declare
        async for events in batches.take_events(settings.sentinel_batch, within=settings.sentinel_batch_within_s):
            await follower.caught_up.wait()  # a signal of a model the book has not reached yet is not unknown
            sentinel.absorb(((e.message.partition, e.value) for e in events), time.time())

    @app.timer(interval=settings.sentinel_check_every_s)
    async def judge_closed_windows() -> None:
        if not (follower.caught_up.is_set() and recovered(app)):
            return
        if not state["indexed"]:
            sentinel.index_table(lambda model: model_partition(model, settings.topic_partitions))
            state["indexed"] = True
        now = time.time()
        due: list[Judged] = state["unsettled"]
        for start in sentinel.closable(now):
            due += sentinel.breaches(start)
        due += sentinel.judged_again()
        state["unsettled"] = []
        for judged in one_per_change(due):
            answer = await registrar.ask(judged)
            sentinel.answered(judged, answer)
            if answer == "retry":
                state["unsettled"].append(judged)
        sentinel.prune(now)

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            checks = {"log_folded": follower.caught_up.is_set(),
                      "table_recovered": recovered(app), "windows_indexed": state["indexed"]}
            if not follower.caught_up.is_set():
                checks["progress"] = follower.folding  # `modelog up` waits while this moves
            return self.json({"status": "ready" if ready() else "starting", "checks": checks},
                             status=200 if ready() else 503)

    @app.page("/v1/windows")
    class Windows(View):
        async def get(self, request: Request) -> Response:
            model = request.query.get("model")
            if not model:
                return self.json({"error": {"code": "model_required", "message": "pass ?model=NAME"}}, status=400)
            if not book.knows(model):
                return self.json({"error": {"code": "model_not_found",
                                            "message": f"the sentinel knows no model {model!r}"}}, status=404)
            return self.json({"model": model, "window_s": settings.sentinel_window_s,
                              "windows": sentinel.windows(model, time.time())})

    def status() -> dict[str, Any]:
        return {"counts": dict(sentinel.counts), "events_folded": book.events, "started_from": follower.started_from,
                "folded_at_start": follower.folded_at_start,
                "models": book.models(), "models_at_rest": len(book.resting),
                "window_s": settings.sentinel_window_s, "grace_s": settings.sentinel_grace_s,
                "unproven_events": follower.refused, "windows": len(sentinel.by_window),
                "unsettled": len(state["unsettled"]), "watched": len(sentinel.watched)}

    @app.page("/v1/status")
    class Status(View):
        async def get(self, request: Request) -> Response:
            return self.json(status())

    metrics.expose(status)

    @app.page("/metrics")
    class Metrics(View):
        """The platform's metrics and the sentinel's (metrics.py), as every service's /metrics: no token."""

        async def get(self, request: Request) -> Response:
            body, content_type = await metrics_response()
            # In the header: aiohttp refuses a content_type argument that carries a charset.
            return self.bytes(body, headers={"Content-Type": content_type})

    return app


def main() -> None:
    settings = SentinelSettings()
    app = create_app(settings)
    faust.Worker(app, loglevel="INFO").execute_from_commandline()
