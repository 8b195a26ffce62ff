"""The change feed: modelog.events as Server-Sent Events in CloudEvents JSON.

Each SSE id is a cursor: the next offset of every partition after that event,
so a subscriber that reconnects with Last-Event-ID resumes exactly there, with
no gap and no duplicate, whichever partitions its filter spans. It reads the
log itself (read_committed): what it sends is committed and in log order per
model. One consumer per subscriber; a shared fan-out is for when there are
thousands. Like every reader of the log it sends only events proven to come
from the log's writer: an unproven one is passed over (the projector
quarantines it and raises the alert).
"""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone

from aiokafka import TopicPartition

from modelog_contract.domain.events import Event
from modelog_contract.proven import Refused, proven_event
from modelog_contract.signing import TrustedKeys
from modelog_platform.adapters.log_reader import assigned_consumer, model_partition
from modelog_platform.identity.permissions import may_act_on
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints
from modelog_platform.web import ApiError

HEARTBEAT_S = 15.0


def parse_cursor(cursor: str, partitions: int) -> list[int]:
    try:
        offsets = [int(part) for part in cursor.split(",")]
    except ValueError:
        offsets = []
    if len(offsets) != partitions or min(offsets) < 0:
        raise ApiError(400, "invalid_cursor", f"Last-Event-ID must be {partitions} offsets joined by commas")
    return offsets


def cloud_event(event: Event) -> dict:
    return {"specversion": "1.0", "id": str(event.event_id), "source": f"modelog/models/{event.model}",
            "type": f"io.modelog.{event.type}", "subject": event.model,
            "time": event.occurred_at.isoformat(), "datacontenttype": "application/json",
            "data": event.model_dump(mode="json")}


async def change_feed(endpoints: EngineEndpoints, trusted: TrustedKeys, model: str | None, types: set[str],
                      cursor: str | None, from_start: bool, grants: tuple[str, ...] = (),
                      until: datetime | None = None) -> AsyncIterator[str]:
    """The feed; only events of models `grants` cover (none: all); ends at
    `until` (the subscriber's token expiry), so a stream outlives no token."""
    partitions = endpoints.topic_partitions
    # A model's events all sit in the partition its name hashes to.
    every = list(range(partitions))
    watched = [model_partition(model, partitions)] if model else every
    positions = parse_cursor(cursor, partitions) if cursor else None
    async with assigned_consumer(endpoints, EVENTS_TOPIC, watched) as consumer:
        tps = [TopicPartition(EVENTS_TOPIC, p) for p in watched]
        if positions is None:
            await (consumer.seek_to_beginning(*tps) if from_start else consumer.seek_to_end(*tps))
            ends = {tp.partition: await consumer.position(tp) for tp in tps}
            positions = [ends.get(p, 0) for p in every]
        else:
            for tp in tps:
                consumer.seek(tp, positions[tp.partition])
        yield ": modelog change feed\n\n"
        while until is None or datetime.now(timezone.utc) < until:
            try:
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), HEARTBEAT_S)
            except asyncio.TimeoutError:
                batches = {}
            if not batches:
                yield ": keep-alive\n\n"
                continue
            for tp, records in batches.items():
                for record in records:
                    positions[tp.partition] = record.offset + 1
                    event = proven_event(record.value, trusted)
                    if (isinstance(event, Refused) or (model and event.model != model) or (types and event.type not in types)
                            or not may_act_on(grants, event.model)):
                        continue
                    cursor_now = ",".join(map(str, positions))
                    yield f"id: {cursor_now}\nevent: {event.type}\ndata: {json.dumps(cloud_event(event))}\n\n"
