"""State as of a point: from the nearest checkpoint, in memory or stored.

Memory holds a model's state every EVERY events, as answers pass them, for
the models asked last (STATES in all); behind it, PostgreSQL holds every
model's state every `stored_every` events (auditor.checkpoints), so an
answer that memory cannot start close to, the first after a restart
included, reads one stored checkpoint and folds at most `stored_every` events. The audit store is
append-only, so no checkpoint goes stale."""

from collections import OrderedDict
from collections.abc import Iterator, Sequence

import asyncpg

from auditor import checkpoints as stored
from auditor import store
from modelog_contract.audit.forensics import AtSeq, Checkpoints, Point
from modelog_contract.domain.events import Event
from modelog_contract.domain.state import ModelState
from modelog_platform.web import ApiError

EVERY = 64      # an answer folds at most this many events past a checkpoint in memory
# States kept in memory across models: a state costs about what its model
# holds (its versions), so this bounds memory; the models asked least
# recently are dropped first, and a dropped state is read from the store again.
STATES = 1024


class StateReplays:
    def __init__(self, stored_every: int = 0, every: int = EVERY, states: int = STATES):
        self.stored_every, self.every, self.states = stored_every, every, states
        self.checkpoints: OrderedDict[str, Checkpoints] = OrderedDict()
        self.events_read = 0  # from the store, to answer: what the checkpoints spare

    def _for(self, model: str) -> Checkpoints:
        found = self.checkpoints.pop(model, None) or Checkpoints(model, self.every, limit=self.states)
        while self.checkpoints and sum(len(c.states) for c in self.checkpoints.values()) + len(found.states) > self.states:
            self.checkpoints.popitem(last=False)
        self.checkpoints[model] = found
        return found

    async def state_at(self, conn: asyncpg.Connection, model: str, point: Point) -> ModelState:
        """The model's state at `point`; ApiError 404 if there is no such model or seq."""
        head = await store.head_seq(conn, model)
        if head is None:
            raise ApiError(404, "model_not_found", f"no events for model {model!r}")
        seq = point.seq if isinstance(point, AtSeq) else await store.seq_at(conn, model, point.at)
        if seq > head:
            raise ApiError(404, "seq_not_found", f"model {model!r} is at seq {head}, not {seq}", head_seq=head)
        checkpoints = self._for(model)
        base = checkpoints.base_for(seq)
        if self.stored_every and seq - base.seq > self.every and (
                found := await stored.nearest(conn, model, seq, after_seq=base.seq)):
            checkpoints.keep(found)
            base = found
        events = await store.events_between(conn, model, base.seq, seq)
        self.events_read += len(events)
        if not self.stored_every or len(events) <= self.stored_every:
            return checkpoints.replay(base, events)
        # History no stored checkpoint covers (recorded before the auditor
        # stored them): store the ones this fold passes, once.
        state = base
        for part in _cut_after_multiples(events, self.stored_every):
            state = checkpoints.replay(state, part)
            if state.seq % self.stored_every == 0:
                await stored.save(conn, state)
        return state


def _cut_after_multiples(events: Sequence[Event], every: int) -> Iterator[Sequence[Event]]:
    """`events` in runs, each ending at a seq that is a multiple of `every` (but the last)."""
    start = 0
    for i, event in enumerate(events):
        if event.seq % every == 0:
            yield events[start:i + 1]
            start = i + 1
    if start < len(events):
        yield events[start:]
