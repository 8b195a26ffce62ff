"""Each model's state every N of its events, stored in PostgreSQL
(audit_checkpoints): written as the auditor records the events, read back by
as-of answers, so the first answer after a restart reads one checkpoint and
folds at most N events instead of the model's whole history.

A stored checkpoint is used only once it proves itself: its bytes match
their digest, decode as the contract's state of the shape this code knows
(STATE_SCHEMA), and name the model, the seq and the head hash the trail holds
there. One that does not is logged and skipped, and an older one (or seq 0)
used instead: never a wrong state."""

import logging
from collections import OrderedDict
from hashlib import sha256

import asyncpg
from pydantic import ValidationError

from auditor import store
from modelog_contract.audit.forensics import replay, without_decided
from modelog_contract.domain.decider import evolve
from modelog_contract.domain.events import Event
from modelog_contract.domain.state import STATE_SCHEMA, ModelState
from modelog_platform.adapters.projection import Positioned

log = logging.getLogger("auditor.checkpoints")


async def save(conn: asyncpg.Connection, state: ModelState) -> None:
    """Store `state` (without `decided`, as answers hold it) as its model's checkpoint at its seq."""
    data = state.model_dump_json().encode()
    await store.save_checkpoint(conn, state.name, STATE_SCHEMA, state.seq, data, sha256(data).hexdigest())


async def nearest(conn: asyncpg.Connection, model: str, upto_seq: int, after_seq: int = 0) -> ModelState | None:
    """The model's newest sound checkpoint in (after_seq, upto_seq], if any."""
    while upto_seq > after_seq:
        row = await store.checkpoint_at_or_before(conn, model, STATE_SCHEMA, upto_seq, after_seq)
        if row is None:
            return None
        state, problem = _proven(model, row)
        if state is not None:
            return state
        log.error("stored checkpoint of %s at seq %s skipped, an older one is used: %s", model, row["seq"], problem)
        upto_seq = row["seq"] - 1
    return None


def _proven(model: str, row: asyncpg.Record) -> tuple[ModelState | None, str]:
    data = bytes(row["state"])
    if sha256(data).hexdigest() != row["digest"]:
        return None, "its bytes do not match their digest"
    try:
        state = ModelState.model_validate_json(data)
    except ValidationError as error:
        return None, f"it does not decode as a {STATE_SCHEMA} state: {error.error_count()} error(s)"
    if (state.name, state.seq) != (model, row["seq"]):
        return None, f"it holds {state.name!r} at seq {state.seq}"
    if state.head_hash != row["hash"]:
        return None, "its head hash is not the hash of the event stored at its seq"
    return state, ""


class CheckpointWriter:
    """Records each batch of events (store.record_events) and, in the same transaction,
    stores its model's state at every `every`-th seq.

    The state after each model's last recorded event is kept for `models`
    models (least recently recorded dropped), so a checkpoint costs folding
    each event once as it arrives. A model not kept (new to this process, or
    whose events did not follow on) is caught up at its next multiple of
    `every` from its newest stored checkpoint, if that is at most
    `catch_up` events back; history further back (recorded before the
    auditor stored checkpoints) gets its checkpoints from the first as-of
    answer that folds it (auditor.replays)."""

    def __init__(self, every: int, models: int = 256, catch_up: int | None = None):
        self.every, self.models = every, models
        self.catch_up = 4 * every if catch_up is None else catch_up
        self.latest: OrderedDict[str, ModelState] = OrderedDict()

    async def record_batch(self, conn: asyncpg.Connection, batch: list[Positioned]) -> None:
        """The projection adapter's `apply`: the batch's events recorded, then
        checkpoints at the seqs it reaches (a catch-up reads the batch's events back)."""
        await store.record_events(conn, batch)
        if self.every:
            for positioned in batch:
                await self._advance(conn, positioned.event)

    async def record(self, conn: asyncpg.Connection, event: Event, partition: int, offset: int) -> None:
        """One event alone: a batch of one."""
        await self.record_batch(conn, [Positioned(event, partition, offset)])

    async def _advance(self, conn: asyncpg.Connection, event: Event) -> None:
        # Popped, not read: an event that does not follow on (a repeat, a
        # batch redone after its transaction rolled back) leaves the model
        # to be caught up from the store, which holds what was committed.
        known = self.latest.pop(event.model, None)
        at_multiple = event.seq % self.every == 0
        if known is not None and known.seq + 1 == event.seq and known.head_hash == event.prev_hash:
            state = evolve(known, event)
        elif at_multiple:
            found = await self._caught_up(conn, event.model, event.seq)
            if found is None:
                return
            state = found
        else:
            return
        if at_multiple:
            state = without_decided(state)
            await save(conn, state)
        self.latest[event.model] = state
        while len(self.latest) > self.models:
            self.latest.popitem(last=False)

    async def _caught_up(self, conn: asyncpg.Connection, model: str, seq: int) -> ModelState | None:
        base = await nearest(conn, model, seq) or ModelState(name=model)
        if seq - base.seq > self.catch_up:
            return None
        try:
            return replay(base, await store.events_between(conn, model, base.seq, seq))
        except ValueError as gap:  # a seq missing from the trail (kept as an alert): no state to store past it
            log.warning("no checkpoint of %s at seq %s: %s", model, seq, gap)
            return None
