"""The promoter: a Faust app that is the single writer of modelog.events.

Commands and events are co-partitioned by model name, so one partition's
commands are decided in order by one agent, and Faust's exactly-once mode puts
the events, the state changelog and the command offset in one transaction per
partition.
"""

import logging
from datetime import datetime, timezone
from uuid import NAMESPACE_URL, uuid5

import faust

from modelog.codec import decode_command, encode
from modelog.domain import ModelState, decide, evolve
from modelog.domain.decider import reject_malformed
from modelog.domain.types import InvalidName, check_model_name
from modelog.settings import COMMANDS_TOPIC, EVENTS_TOPIC
from promoter import codecs
from promoter.settings import PromoterSettings

log = logging.getLogger("modelog.promoter")
settings = PromoterSettings()
codecs.register()

app = faust.App(
    settings.promoter_app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    processing_guarantee="exactly_once",
    broker_commit_interval=settings.promoter_commit_interval_s,
    store="memory://",
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    web_host=settings.host,
    web_port=settings.promoter_port,
    web_bind=settings.host,
    web_in_thread=False,
    producer_acks=-1,
)

commands = app.topic(COMMANDS_TOPIC, key_serializer="raw", value_serializer="raw")
events = app.topic(EVENTS_TOPIC, key_serializer="raw", value_serializer="modelog-event")
dead_letters = app.topic(
    f"{COMMANDS_TOPIC}.dead-letter", key_serializer="raw", value_serializer="raw",
    partitions=1,
)
# One entry per model: what decide needs. Its changelog is written in the same
# transaction as the events, so state and log never disagree.
models = app.Table(
    "model-state", default=None, key_type=bytes, value_type=bytes,
    partitions=settings.topic_partitions,
)


@app.agent(commands, concurrency=1)
async def decide_commands(stream):
    async for record in stream.events():
        name = (record.key or b"").decode("utf-8", "replace")
        try:
            check_model_name(name)
        except InvalidName:
            # Cannot even name a model: park it, keep going.
            log.warning("command without a valid model key at %s:%s",
                        record.message.partition, record.message.offset)
            await dead_letters.send(key=record.key, value=record.value)
            continue
        stored = models.get(record.key)
        state = ModelState.model_validate_json(stored) if stored else ModelState(name=name)
        try:
            command = decide_input(record.value, name)
        except ValueError as error:  # pydantic's ValidationError included
            position = f"{record.message.topic}/{record.message.partition}/{record.message.offset}"
            new_events = reject_malformed(
                state, uuid5(NAMESPACE_URL, position),
                datetime.fromtimestamp(record.message.timestamp, timezone.utc), str(error),
            )
        else:
            new_events = decide(state, command)
        for event in new_events:
            state = evolve(state, event)
            await events.send(key=name.encode(), value=event)
        if new_events:
            models[record.key] = encode(state)


def decide_input(raw: bytes, key: str):
    command = decode_command(raw)
    if command.model != key:
        raise ValueError(f"record key {key!r} != command model {command.model!r}")
    return command


@app.page("/healthz")
async def healthz(web, request):
    return web.json({"status": "alive"})


@app.page("/readyz")
async def readyz(web, request):
    assigned = app.consumer.assignment() if app.consumer else set()
    ready = bool(assigned) and not app.rebalancing
    body = {"ready": ready, "assigned_partitions": len(assigned)}
    return web.json(body, status=200 if ready else 503)
