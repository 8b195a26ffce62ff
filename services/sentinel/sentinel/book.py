"""What the sentinel knows of each model, folded from the log it follows.

The sentinel reads `modelog.events` itself rather than asking the projector:
each closing window needs every watched model's policy, Production version,
split and previous Production version at once, and a signal of an unknown
model must be dropped without a request per signal. The model states are the
contract's own `evolve`, so the sentinel sees a split or a stage exactly as
the decider will when its command arrives.

A model's state as Python objects takes several times its JSON, and most
models are neither changed nor judged for long stretches: a state no event
and no question touched since the last `rest()` is kept as its JSON until it
is next needed. The fold rests after each chunk, and the sentinel every
two minutes (follower.REST_EVERY_S), so the states held decoded are those in
use.
"""

from datetime import datetime

from modelog_contract.domain.chain import GENESIS_HASH
from modelog_contract.domain.decider import evolve
from modelog_contract.domain.events import Event, PolicySet, StageChanged, TrafficSplitSet
from modelog_contract.domain.idempotency import IdempotencyWindow
from modelog_contract.domain.policy import DEFAULT_POLICY, DEFAULT_POLICY_STREAM, Policy
from modelog_contract.domain.splits import TrafficSplit, canaries
from modelog_contract.domain.state import ModelState
from sentinel.rules import Serving

PRODUCTIONS_KEPT = 20  # the newest versions each model had in Production, for a rollback's target
# The command ids a model remembers serve the decider's idempotency, and the
# sentinel decides nothing on its states: it remembers one, not the decider's
# thousand a model, which were most of the book's memory.
REMEMBERED = IdempotencyWindow(commands=1)


class Book:
    def __init__(self) -> None:
        self.states: dict[str, ModelState] = {}  # decoded: touched since the last rest
        self.resting: dict[str, bytes] = {}  # the JSON of each state untouched since
        self.touched: set[str] = set()
        self.default_policy: Policy = DEFAULT_POLICY
        self.policy_head: tuple[int, str] = (0, GENESIS_HASH)  # (seq, hash) of the default policy's last event
        self.productions: dict[str, list[int]] = {}
        # When each version took its current serving role: a window is judged
        # for it only from then on, never on what it did in an earlier role.
        self.since: dict[str, dict[int, datetime]] = {}
        self.events = 0

    def apply(self, event: Event) -> None:
        """Fold one proven event; an event out of its model's order is ignored."""
        self.events += 1
        if event.model == DEFAULT_POLICY_STREAM:
            self.policy_head = (event.seq, event.hash)
            if isinstance(event.payload, PolicySet):
                self.default_policy = event.payload.policy
            return
        state = self.state(event.model) or ModelState(name=event.model)
        if event.seq != state.seq + 1:
            return  # a redelivered or out-of-order record: the fold already has it, or cannot use it
        after = self.states[event.model] = evolve(state, event, REMEMBERED)
        self.touched.add(event.model)
        payload, since = event.payload, self.since.setdefault(event.model, {})
        if isinstance(payload, StageChanged) and payload.to_stage == "Production":
            kept = [v for v in self.productions.get(event.model, []) if v != payload.version]
            self.productions[event.model] = (kept + [payload.version])[-PRODUCTIONS_KEPT:]
            since[payload.version] = event.occurred_at
        if isinstance(payload, TrafficSplitSet) and after.traffic_split is not None:
            before = state.traffic_split.versions() if state.traffic_split is not None else set()
            for route in canaries(after.traffic_split):
                if route.version not in before:
                    since[route.version] = event.occurred_at

    def state(self, model: str) -> ModelState | None:
        state = self.states.get(model)
        if state is None and (json := self.resting.pop(model, None)) is not None:
            state = self.states[model] = ModelState.model_validate_json(json)
        self.touched.add(model)
        return state

    def head(self, model: str) -> tuple[int, str]:
        """(seq, hash) of the last event folded into `model`'s stream; (0, genesis) for none."""
        if model == DEFAULT_POLICY_STREAM:
            return self.policy_head
        state = self.state(model)
        return (state.seq, state.head_hash) if state is not None else (0, GENESIS_HASH)

    def take(self, other: "Book") -> None:
        """Hold what `other` holds, in place: the sentinel's parts keep this book."""
        vars(self).update(vars(other))

    def seq(self, model: str) -> int:
        state = self.state(model)
        return state.seq if state is not None else 0

    def has(self, model: str) -> bool:
        """Whether the book holds a state for `model` (at rest or not), without decoding it."""
        return model in self.states or model in self.resting

    def models(self) -> int:
        return len(self.states) + len(self.resting)

    def rest(self) -> int:
        """Keep as JSON each state untouched since the last rest; returns how many went to rest."""
        idle = [name for name in self.states if name not in self.touched]
        for name in idle:
            self.resting[name] = self.states.pop(name).model_dump_json().encode()
        self.touched.clear()
        return len(idle)

    def knows(self, model: str) -> bool:
        state = self.state(model)
        return state is not None and state.exists and not state.deleted

    def policy(self, model: str) -> Policy:
        state = self.state(model)
        return state.policy if state is not None and state.policy is not None else self.default_policy

    def serving(self, model: str) -> Serving:
        state = self.state(model)
        if state is None:
            return Serving()
        production = state.production_version()
        current = production.version if production else None
        split = state.traffic_split
        routed = tuple(r.version for r in canaries(split)) if split is not None else ()
        previous = next((v for v in reversed(self.productions.get(model, []))
                         if v != current and (s := state.versions.get(v)) is not None
                         and s.stage == "Archived" and not s.deleted), None)
        since = self.since.get(model, {})
        return Serving(production=current, canaries=routed, previous_production=previous,
                       since={v: since[v] for v in (current, *routed) if v is not None and v in since})

    def split(self, model: str) -> TrafficSplit | None:
        state = self.state(model)
        return state.traffic_split if state is not None else None
