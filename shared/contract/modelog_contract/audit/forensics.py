"""The auditor's questions over one model's events, answered purely.

- As of: the state after a prefix of the log, cut at a seq or an instant.
- Diff: which fields of two such states differ, as readable paths.
- Why: the chain of events that put a version in its stage.
- Approvals: who approved (or denied) a version's promotion, under which
  policy and with which gate results.

Events come in seq order. The answers hold the model's state without
`decided` (the command ids a retry is recognised by): the decider needs it,
an auditor does not, and dropping it keeps replay linear in the events.
"""

import re
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import takewhile
from typing import Any, Literal, TypeVar

from modelog_contract.domain.decider import evolve
from modelog_contract.domain.events import (
    ApprovalDenied,
    ApprovalGranted,
    CommandRejected,
    Event,
    EventPayload,
    ModelDeleted,
    PolicySet,
    StageChanged,
    TransitionRequested,
    VersionDeleted,
    VersionRegistered,
)
from modelog_contract.domain.idempotency import NOTHING_DECIDED
from modelog_contract.domain.monitoring import ErrorRateRule, Evidence
from modelog_contract.domain.policy import DEFAULT_POLICY, Policy
from modelog_contract.domain.rules import RuleResult
from modelog_contract.domain.state import ModelState
from modelog_contract.domain.types import Frozen, Stage

# -- Points in a model's history ----------------------------------------------

@dataclass(frozen=True)
class AtSeq:
    seq: int


@dataclass(frozen=True)
class AtInstant:
    at: datetime


Point = AtSeq | AtInstant


class InvalidPoint(ValueError):
    """Text that names neither a seq nor an ISO-8601 instant."""


def parse_instant(text: str) -> datetime:
    """ISO-8601; a naive instant is taken as UTC, the log's own zone."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidPoint(f"{text!r} is not an ISO-8601 instant") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def parse_point(text: str) -> Point:
    """'42' is a seq; anything else must be an ISO-8601 instant."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return AtSeq(int(text))
    try:
        return AtInstant(parse_instant(text))
    except InvalidPoint:
        raise InvalidPoint(f"{text!r} is neither a seq (a whole number) nor an ISO-8601 instant") from None


def prefix_at(events: Iterable[Event], at: datetime) -> list[Event]:
    """The log as it stood at `at`: the events before the first one stamped
    later. occurred_at is the deciding command's clock, so a log may step back
    in time; cutting at the first step past `at` (rather than picking events
    around it) always yields a state the model really passed through."""
    return list(takewhile(lambda e: e.occurred_at <= at, events))


# -- As of --------------------------------------------------------------------

def without_decided(state: ModelState) -> ModelState:
    return state.model_copy(update={"decided": NOTHING_DECIDED})


def replay(state: ModelState, events: Iterable[Event]) -> ModelState:
    """Fold `events`, which must continue right after `state`, onto it."""
    for event in events:
        state = _step(state, event)
    return without_decided(state)


def _step(state: ModelState, event: Event) -> ModelState:
    if event.seq != state.seq + 1:
        raise ValueError(f"{state.name}: seq {event.seq} does not follow {state.seq}")
    return evolve(state, event)


def as_of(name: str, events: Sequence[Event], point: Point) -> ModelState:
    """The model's state at `point`, from its events from seq 1 on."""
    if isinstance(point, AtSeq):
        return replay(ModelState(name=name), events[:point.seq])
    return replay(ModelState(name=name), prefix_at(events, point.at))


class Checkpoints:
    """States of one model at seqs where an answer may start folding, so an
    as-of answer folds at most `every` events past the nearest one. The log is
    append-only, so a checkpoint never goes stale: one is kept as a replay
    passes a multiple of `every`, or handed in (`keep`) from a store that
    keeps them at other multiples. Past `limit` kept, the least recently used
    is dropped (the empty state at seq 0 never is): it can be read or folded again."""

    def __init__(self, name: str, every: int = 128, limit: int | None = None):
        self.every, self.limit = every, limit
        self.states = [ModelState(name=name)]  # by seq, the first at seq 0
        self._recent: OrderedDict[int, None] = OrderedDict({0: None})  # seqs kept, least recently used first

    def base_for(self, seq: int) -> ModelState:
        """The latest checkpoint at or before `seq`: replay from there."""
        found = self.states[bisect_right(self.states, seq, key=_seq_of) - 1]
        self._recent.move_to_end(found.seq)
        return found

    def keep(self, state: ModelState) -> None:
        """Keep `state` as a checkpoint (without `decided`, as answers are)."""
        at = bisect_right(self.states, state.seq, key=_seq_of)
        if self.states[at - 1].seq != state.seq:
            self.states.insert(at, without_decided(state))
        self._recent[state.seq] = None
        self._recent.move_to_end(state.seq)
        if self.limit is not None and len(self.states) > self.limit:
            dropped = next(seq for seq in self._recent if seq != 0)
            del self._recent[dropped]
            self.states.pop(bisect_right(self.states, dropped, key=_seq_of) - 1)

    def replay(self, base: ModelState, events: Iterable[Event]) -> ModelState:
        """`replay`, keeping each multiple of `every` passed."""
        state = base
        for event in events:
            state = _step(state, event)
            if event.seq % self.every == 0:
                state = without_decided(state)
                self.keep(state)
        return without_decided(state)


def _seq_of(state: ModelState) -> int:
    return state.seq


# -- Diff ---------------------------------------------------------------------

class Change(Frozen):
    """One field that differs: `path` like 'versions.2.stage' or 'aliases.champion'."""

    path: str
    kind: Literal["added", "removed", "changed"]
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        match self.kind:
            case "added":
                return f"+ {self.path} = {self.after!r}"
            case "removed":
                return f"- {self.path} (was {self.before!r})"
        return f"~ {self.path}: {self.before!r} -> {self.after!r}"


# Position in the log, not content: every pair of states differs there.
POSITION_FIELDS = {"name", "seq", "head_hash", "decided"}


def diff(before: ModelState, after: ModelState) -> list[Change]:
    """What differs from `before` to `after`, field by field, in a stable order."""
    return _diff_values("", before.model_dump(mode="json", exclude=POSITION_FIELDS),
                        after.model_dump(mode="json", exclude=POSITION_FIELDS))


def _diff_values(path: str, old: Any, new: Any) -> list[Change]:
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(old.keys() | new.keys(), key=_natural):
            inner = f"{path}.{key}" if path else str(key)
            if key not in new:
                changes.append(Change(path=inner, kind="removed", before=old[key]))
            elif key not in old:
                changes.append(Change(path=inner, kind="added", after=new[key]))
            else:
                changes += _diff_values(inner, old[key], new[key])
        return changes
    return [] if old == new else [Change(path=path, kind="changed", before=old, after=new)]


def _natural(key: str) -> tuple[int, int, str]:
    """Version numbers in number order (10 after 9), other keys by name."""
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


# -- Policy in force ----------------------------------------------------------

class PolicyInEffect(Frozen):
    policy: Policy
    source: str


DEFAULT_SEQ = re.compile(r"the default policy set at seq (\d+)")


def policy_in_effect(events: Sequence[Event], default_events: Sequence[Event], decision: Event) -> PolicyInEffect:
    """The policy `decision` was made under: the model's own PolicySet before it,
    else the default stream's PolicySet the decision names in its
    policy_in_force rule result (else the last one set by then), else the
    built-in default."""
    own = [(e, p) for e, p in _payloads(events, PolicySet) if e.seq < decision.seq]
    if own:
        event, installed = own[-1]
        return PolicyInEffect(policy=installed.policy,
                              source=f"the model's own policy, set at seq {event.seq} by {event.actor.subject}")
    named = _named_default_seq(decision)
    defaults = [(e, p) for e, p in _payloads(default_events, PolicySet) if (
        e.seq == named if named is not None else e.occurred_at <= decision.occurred_at)]
    if defaults and named != 0:
        event, installed = defaults[-1]
        return PolicyInEffect(policy=installed.policy,
                              source=f"the default policy, set at seq {event.seq} by {event.actor.subject}")
    return PolicyInEffect(policy=DEFAULT_POLICY, source="the built-in default policy")


def _named_default_seq(decision: Event) -> int | None:
    """The default policy's seq as the decision recorded it; 0 for the built-in one."""
    for result in _rule_results_of(decision):
        if result.rule == "policy_in_force":
            if found := DEFAULT_SEQ.search(result.detail):
                return int(found.group(1))
            return 0 if "built-in" in result.detail else None
    return None


# -- Approvals and why --------------------------------------------------------

class VersionNotFound(LookupError):
    pass


class RequestStory(Frozen):
    """One transition request: who asked, who approved or denied, how it ended."""

    requested: Event                  # TransitionRequested
    reviews: tuple[Event, ...] = ()   # ApprovalGranted / ApprovalDenied, in order
    moved: Event | None = None        # the StageChanged it led to
    status: Literal["promoted", "denied", "superseded", "pending"]
    policy: PolicyInEffect
    # The gates as last judged: when it moved if it did, else when requested.
    gate_results: tuple[RuleResult, ...]


def approvals(events: Sequence[Event], version: int, to_stage: Stage = "Production",
              default_events: Sequence[Event] = ()) -> list[RequestStory]:
    """Every request to move `version` to `to_stage`, with its reviews and outcome."""
    _registration(events, version)
    return [story for story in _stories(events, version, default_events)
            if _payload_of(story.requested, TransitionRequested).to_stage == to_stage]


def _stories(events: Sequence[Event], version: int, default_events: Sequence[Event]) -> list[RequestStory]:
    stories = []
    for requested, asked in _payloads(events, TransitionRequested):
        if asked.version != version:
            continue
        later = [e for e in events if e.seq > requested.seq]
        reviews = tuple(e for e in later if isinstance(e.payload, ApprovalGranted | ApprovalDenied)
                        and e.payload.request_id == asked.request_id)
        moved = next((e for e in later if isinstance(e.payload, StageChanged)
                      and e.payload.request_id == asked.request_id), None)
        settled_otherwise = any(_ends_requests_for(e.payload, version) for e in later)
        status: Literal["promoted", "denied", "superseded", "pending"] = (
            "promoted" if moved else "denied" if any(r.type == "ApprovalDenied" for r in reviews)
            else "superseded" if settled_otherwise else "pending")
        judged = moved or requested
        stories.append(RequestStory(requested=requested, reviews=reviews, moved=moved, status=status,
                                    policy=policy_in_effect(events, default_events, judged),
                                    gate_results=_rule_results_of(judged)))
    return stories


def _ends_requests_for(payload: EventPayload, version: int) -> bool:
    """Whether this event closes every open request for `version`."""
    match payload:
        case StageChanged() | VersionDeleted():
            return payload.version == version
        case ModelDeleted():
            return True
    return False


class Why(Frozen):
    """Why `version` is in `stage`: its registration, the move that put it
    there, and what that move rested on."""

    model: str
    version: int
    stage: Stage
    registered: Event
    moved: Event | None = None          # None: never moved, still in "None"
    request: RequestStory | None = None  # the approved request behind a promotion
    cause: Event | None = None          # archived-by-promotion: the promotion that displaced it
    deleted: Event | None = None        # the tombstone, if the version was deleted since
    policy: PolicyInEffect | None = None
    gate_results: tuple[RuleResult, ...] = ()
    stage_history: tuple[Event, ...] = ()  # every StageChanged of the version

    def summary(self) -> list[str]:
        """The chain in plain sentences, oldest first."""
        r = self.registered
        lines = [f"seq {r.seq} {r.occurred_at.isoformat()}: {r.actor.subject} registered v{self.version}"]
        if self.request:
            q = self.request.requested
            asked = _payload_of(q, TransitionRequested)
            lines.append(f"seq {q.seq} {q.occurred_at.isoformat()}: {q.actor.subject} requested "
                         f"{asked.from_stage} -> {asked.to_stage} "
                         f"({asked.approvals_required} approval(s) required)")
            lines += [f"seq {a.seq} {a.occurred_at.isoformat()}: {a.actor.subject} "
                      f"({', '.join(a.actor.roles) or 'no roles'}) "
                      f"{'approved' if a.type == 'ApprovalGranted' else 'denied'}" for a in self.request.reviews]
        if self.cause:
            promotion = _payload_of(self.cause, StageChanged)
            lines.append(f"seq {self.cause.seq}: v{promotion.version} was moved to Production "
                         f"({promotion.why}) by {self.cause.actor.subject}, archiving this version")
        if self.moved:
            m, move = self.moved, _payload_of(self.moved, StageChanged)
            lines.append(f"seq {m.seq} {m.occurred_at.isoformat()}: {move.from_stage} -> "
                         f"{move.to_stage} ({move.why}), decided for {m.actor.subject}")
            if move.evidence is not None:
                lines.append(evidence_in_words(move.evidence))
        if self.policy:
            lines.append(f"under {self.policy.source}")
        if self.deleted:
            lines.append(f"seq {self.deleted.seq}: deleted by {self.deleted.actor.subject}")
        lines += [f"gate {g.rule}: {'passed' if g.passed else 'FAILED'} ({g.detail})" for g in self.gate_results]
        return lines


def evidence_in_words(evidence: Evidence) -> str:
    """The monitoring a sentinel's decision rested on: the rule, the window, the figures."""
    rule = evidence.rule
    if isinstance(rule, ErrorRateRule):
        said = f"more than {rule.max_error_percent:g}% of requests failing"
    else:
        said = f"a canary's mean {rule.metric} worse than Production's by more than {rule.margin:g}"
    figures = "; ".join(f"v{v.version} {v.requests} requests, {v.errors} errors"
                        + "".join(f", mean {name} {value:.4g}" for name, value in sorted(v.metrics.items()))
                        for v in evidence.versions)
    return (f"on the evidence of rule {rule.name} ({said} over {rule.window_s} s, at least {rule.min_requests} "
            f"requests), window {evidence.window_start.isoformat()} to {evidence.window_end.isoformat()}: "
            f"{figures}; {evidence.detail}")


def why(name: str, events: Sequence[Event], version: int, default_events: Sequence[Event] = ()) -> Why:
    """The events need to hold at least: the version's own events, the model's
    PolicySet events and every event of the decisions that moved the version."""
    registered = _registration(events, version)
    deleted = next((e for e, p in _payloads(events, VersionDeleted) if p.version == version), None)
    history = tuple(e for e, p in _payloads(events, StageChanged) if p.version == version)
    if not history:
        return Why(model=name, version=version, stage="None", registered=registered, deleted=deleted)
    moved = history[-1]
    move = _payload_of(moved, StageChanged)
    request = next((s for s in _stories(events, version, default_events) if s.moved == moved), None)
    cause = None
    if move.why == "archived-by-promotion":
        cause = next((e for e, p in _payloads(events, StageChanged)
                      if e.command_id == moved.command_id and p.why in ("promoted", "rollback")), None)
    return Why(model=name, version=version, stage=move.to_stage, registered=registered,
               moved=moved, request=request, cause=cause, deleted=deleted,
               policy=policy_in_effect(events, default_events, moved),
               gate_results=move.rule_results, stage_history=history)


def _registration(events: Sequence[Event], version: int) -> Event:
    found = next((e for e, p in _payloads(events, VersionRegistered) if p.version == version), None)
    if found is None:
        raise VersionNotFound(f"no version {version}")
    return found


# -- Payloads by kind ---------------------------------------------------------

P = TypeVar("P", bound=EventPayload)


def _payloads(events: Iterable[Event], kind: type[P]) -> list[tuple[Event, P]]:
    """The events whose payload is a `kind`, each with that payload."""
    return [(e, e.payload) for e in events if isinstance(e.payload, kind)]


def _payload_of(event: Event, kind: type[P]) -> P:
    """The payload of an event known to be of `kind` (a story's request, a move)."""
    if not isinstance(event.payload, kind):
        raise TypeError(f"{event.model} seq {event.seq} is a {event.type}, not a {kind.__name__}")
    return event.payload


def _rule_results_of(event: Event) -> tuple[RuleResult, ...]:
    """The gate results a decision recorded; () for events that record none."""
    payload = event.payload
    match payload:
        case TransitionRequested() | StageChanged() | CommandRejected():
            return payload.rule_results
    return ()
