"""The append-only audit store: writes (inside the projection's transaction) and reads.

Only events proven to come from the log's writer reach record_events; any
other is kept as an alert by record_unproven and never becomes a model's
head, so no seal can sign it."""

import base64
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import asyncpg

from modelog_contract.codec import decode_event
from modelog_contract.domain.chain import GENESIS_HASH, judge_arrival
from modelog_contract.domain.events import Event
from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM
from modelog_contract.domain.upcasters import UPCASTERS
from modelog_contract.proven import Refused
from modelog_platform.adapters.projection import Positioned

log = logging.getLogger("auditor.chain")


# Each model's stored head, for a batch's models, one index probe each.
HEADS = ("SELECT m.model, h.seq, h.hash FROM unnest($1::text[]) AS m(model) CROSS JOIN LATERAL"
         " (SELECT seq, hash FROM audit_events WHERE model = m.model ORDER BY seq DESC LIMIT 1) AS h")
INSERT_ALERT = ("INSERT INTO audit_alerts (model, seq, event_id, problem, kafka_partition, kafka_offset, event)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)")
INSERT_EVENT = ("INSERT INTO audit_events (model, seq, event_id, type, occurred_at, actor_subject,"
                " command_id, hash, prev_hash, kafka_partition, kafka_offset, event)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")


async def record_event(conn: asyncpg.Connection, event: Event, partition: int, offset: int) -> None:
    """One event alone: a batch of one."""
    await record_events(conn, [Positioned(event, partition, offset)])


async def record_events(conn: asyncpg.Connection, batch: Sequence[Positioned]) -> None:
    """Record a batch of events (in log order), checking first that each
    continues its model's chain as stored, or as the batch's earlier events
    left it; a break is logged and kept as an alert in the same transaction.
    Three round trips a batch: the heads, the alerts, the events."""
    heads = {row["model"]: (row["seq"], row["hash"])
             for row in await conn.fetch(HEADS, list({positioned.event.model: None for positioned in batch}))}
    alerts, kept = [], []
    for event, partition, offset in batch:
        fields = event.model_dump(mode="json")
        # An upcast event no longer hashes as stored in the log: `modelog audit
        # verify` checks those on the raw records.
        upcast = any(kind == event.type for kind, _ in UPCASTERS)
        head_seq, head_hash = heads.get(event.model, (0, GENESIS_HASH))
        arrival = judge_arrival(head_seq, head_hash, fields, check_content=not upcast)
        if arrival.problem:
            log.error("audit chain break: %s seq %s (partition %s, offset %s): %s",
                      event.model, event.seq, partition, offset, arrival.problem)
            alerts.append((event.model, event.seq, event.event_id, arrival.problem, partition, offset,
                           event.model_dump_json()))
        if arrival.keep:  # a kept event is past the head: the model's new head
            heads[event.model] = (event.seq, event.hash)
            kept.append((event.model, event.seq, event.event_id, event.type, event.occurred_at,
                         event.actor.subject, event.command_id, event.hash, event.prev_hash,
                         partition, offset, event.model_dump_json()))
    if alerts:
        await conn.executemany(INSERT_ALERT, alerts)
    if kept:
        await conn.executemany(INSERT_EVENT, kept)


async def record_unproven(conn: asyncpg.Connection, refused: Refused, partition: int, offset: int) -> None:
    """Keep an event the log's writer did not sign (or that was changed after
    signing) as an alert, with the record as evidence; it is not an audit event."""
    await conn.execute(
        "INSERT INTO audit_alerts (model, seq, event_id, problem, kafka_partition, kafka_offset, event)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        refused.model or "?", refused.seq if refused.seq is not None else 0,
        refused.event_id or UUID(int=0), f"not proven to come from the log's writer: {refused.problem}",
        partition, offset, json.dumps(refused.fields))


async def alerts_summary(conn: asyncpg.Connection) -> dict:
    """How many alerts, and the newest (for /readyz)."""
    count, newest = await alerts(conn, 1)
    return {"alerts": count, "newest": newest[0] if newest else None}


async def alerts(conn: asyncpg.Connection, limit: int) -> tuple[int, list[dict]]:
    """How many chain breaks and unproven events were found, and the latest `limit` of them."""
    rows = await conn.fetch(
        "SELECT model, seq, event_id, problem, kafka_partition, kafka_offset, detected_at"
        " FROM audit_alerts ORDER BY id DESC LIMIT $1", limit)
    return await conn.fetchval("SELECT count(*) FROM audit_alerts"), [
        {**dict(r), "event_id": str(r["event_id"]), "detected_at": r["detected_at"].isoformat()} for r in rows]


def decoded(rows) -> list[Event]:
    return [decode_event(r["event"]) for r in rows]


async def timeline(conn: asyncpg.Connection, model: str, limit: int, after_seq: int = 0) -> list[Event]:
    return decoded(await conn.fetch(
        "SELECT event FROM audit_events WHERE model = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        model, after_seq, limit))


async def head_seq(conn: asyncpg.Connection, model: str) -> int | None:
    return await conn.fetchval("SELECT max(seq) FROM audit_events WHERE model = $1", model)


async def seq_at(conn: asyncpg.Connection, model: str, at: datetime) -> int:
    """The last seq before the model's first event stamped after `at` (see forensics.prefix_at)."""
    return await conn.fetchval(
        "SELECT coalesce((SELECT min(seq) - 1 FROM audit_events WHERE model = $1 AND occurred_at > $2),"
        " (SELECT coalesce(max(seq), 0) FROM audit_events WHERE model = $1))", model, at)


async def events_between(conn: asyncpg.Connection, model: str, after_seq: int, upto_seq: int) -> list[Event]:
    return decoded(await conn.fetch(
        "SELECT event FROM audit_events WHERE model = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
        model, after_seq, upto_seq))


async def checkpoint_at_or_before(conn: asyncpg.Connection, model: str, state_schema: str, upto_seq: int,
                                  after_seq: int) -> asyncpg.Record | None:
    """The model's newest stored checkpoint of `state_schema` in (after_seq,
    upto_seq]: seq, state, digest, and the hash of the event stored at its seq."""
    return await conn.fetchrow(
        "SELECT c.seq, c.state, c.digest, e.hash FROM audit_checkpoints c"
        " LEFT JOIN audit_events e ON e.model = c.model AND e.seq = c.seq"
        " WHERE c.model = $1 AND c.state_schema = $2 AND c.seq > $3 AND c.seq <= $4"
        " ORDER BY c.seq DESC LIMIT 1", model, state_schema, after_seq, upto_seq)


async def save_checkpoint(conn: asyncpg.Connection, model: str, state_schema: str, seq: int, state: bytes,
                          digest: str) -> None:
    """Store a checkpoint unless one is stored at that seq: it would hold the same state."""
    await conn.execute(
        "INSERT INTO audit_checkpoints (model, state_schema, seq, state, digest) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT DO NOTHING", model, state_schema, seq, state, digest)


VERSION = "(event -> 'payload' ->> 'version')::integer"  # as indexed by audit_events_model_version


async def version_story(conn: asyncpg.Connection, model: str, version: int) -> list[Event]:
    """What forensics.why needs: the version's own events, the model's policies,
    and every event of the decisions that moved the version."""
    return decoded(await conn.fetch(
        f"SELECT event FROM audit_events WHERE model = $1 AND ({VERSION} = $2 OR type = 'PolicySet'"
        f" OR command_id IN (SELECT command_id FROM audit_events WHERE model = $1 AND {VERSION} = $2"
        "  AND type = 'StageChanged')) ORDER BY seq", model, version))


async def default_policies(conn: asyncpg.Connection) -> list[Event]:
    return decoded(await conn.fetch(
        "SELECT event FROM audit_events WHERE model = $1 AND type = 'PolicySet' ORDER BY seq",
        DEFAULT_POLICY_STREAM))


class Cursor(NamedTuple):
    """Where a page by (occurred_at, model, seq) ended; the next starts after it."""

    occurred_at: datetime
    model: str
    seq: int

    def encode(self) -> str:
        text = f"{self.occurred_at.isoformat()}|{self.model}|{self.seq}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        """Raises ValueError for anything `encode` did not make."""
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, model, seq = text.split("|")
        return cls(datetime.fromisoformat(at), model, int(seq))


class Filters(NamedTuple):
    actor: str | None = None
    model: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def where(self, first_param: int = 1) -> tuple[str, list]:
        clauses, params = [], []
        for value, clause in ((self.actor, "actor_subject = ${}"), (self.model, "model = ${}"),
                              (self.since, "occurred_at >= ${}"), (self.until, "occurred_at < ${}")):
            if value is not None:
                params.append(value)
                clauses.append(clause.format(first_param + len(params) - 1))
        return " AND ".join(clauses) or "TRUE", params


async def events_page(conn: asyncpg.Connection, filters: Filters, after: Cursor | None,
                      limit: int) -> tuple[list[Event], Cursor | None]:
    """One page in (occurred_at, model, seq) order, and the cursor of the next
    page (None on the last)."""
    where, params = filters.where()
    if after is not None:
        n = len(params)
        where += f" AND (occurred_at, model, seq) > (${n + 1}, ${n + 2}, ${n + 3})"
        params += list(after)
    rows = await conn.fetch(
        f"SELECT event, occurred_at, model, seq FROM audit_events WHERE {where}"
        f" ORDER BY occurred_at, model, seq LIMIT {int(limit) + 1}", *params)
    more = len(rows) > limit
    rows = rows[:limit]
    following = Cursor(rows[-1]["occurred_at"], rows[-1]["model"], rows[-1]["seq"]) if more else None
    return decoded(rows), following


async def count_events(conn: asyncpg.Connection, filters: Filters) -> int:
    where, params = filters.where()
    return await conn.fetchval(f"SELECT count(*) FROM audit_events WHERE {where}", *params)


async def chain_heads(conn: asyncpg.Connection) -> list[tuple[str, int, str, dict]]:
    """Every model's last stored event: (model, seq, hash, the event's fields), by model."""
    rows = await conn.fetch("SELECT DISTINCT ON (model) model, seq, hash, event FROM audit_events"
                            " ORDER BY model, seq DESC")
    return [(r["model"], r["seq"], r["hash"], json.loads(r["event"])) for r in rows]
