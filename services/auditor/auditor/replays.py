"""State as of a point, served from checkpoints kept per model in memory.

The audit store is append-only, so a checkpoint never goes stale; a model's
checkpoints are dropped only to bound memory (least recently asked first)."""

from collections import OrderedDict

import asyncpg

from auditor import store
from modelog_contract.audit.forensics import AtSeq, Checkpoints, Point
from modelog_contract.domain.state import ModelState
from modelog_platform.web import ApiError

EVERY = 64      # an answer folds at most this many events past a checkpoint
MODELS = 64     # models whose checkpoints are kept


class StateReplays:
    def __init__(self, every: int = EVERY, models: int = MODELS):
        self.every, self.models = every, models
        self.checkpoints: OrderedDict[str, Checkpoints] = OrderedDict()

    def _for(self, model: str) -> Checkpoints:
        found = self.checkpoints.pop(model, None) or Checkpoints(model, self.every)
        self.checkpoints[model] = found
        while len(self.checkpoints) > self.models:
            self.checkpoints.popitem(last=False)
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
        return checkpoints.replay(base, await store.events_between(conn, model, base.seq, seq))
