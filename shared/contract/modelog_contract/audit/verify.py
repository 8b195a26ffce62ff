"""Verify the audit trail as stored: every model's chain, event by event.

Works on the raw records of a topic (or a copy of it), so a byte changed in
the log is caught even where the event would still parse. First, each record
must be proven to come from the log's writer (its hash matches its content
and a trusted key signed that hash): one that is not is named and left out
of its model's chain, as every reader of the log leaves it out. Then finds,
per model: unreadable records, seq gaps, events out of order, forks (two
events at one seq), prev_hash links that do not hold, and hashes that do not
match content.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelog_contract.audit.seals import LogIndex, Seal, SealBreak, check_seals, sealed_places
from modelog_contract.domain.chain import GENESIS_HASH
from modelog_contract.proven import UNREADABLE, Refused
from modelog_contract.replay_proofs import Provers, cycle_collection_paused
from modelog_contract.signing import TrustedKeys


@dataclass(frozen=True)
class StoredRecord:
    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True)
class Break:
    """One place where the log is not what the chain says it must be."""

    model: str
    seq: int | None
    partition: int
    offset: int
    problem: str

    def __str__(self) -> str:
        at = f"seq {self.seq}" if self.seq is not None else "unknown seq"
        return f"{self.model} {at} (partition {self.partition}, offset {self.offset}): {self.problem}"


@dataclass
class Verdict:
    models: int
    events: int
    breaks: list[Break]
    seals: int = 0
    seal_breaks: list[SealBreak] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks and not self.seal_breaks


def verify(records: Iterable[StoredRecord], seals: Sequence[Seal] = (),
           public_key: Ed25519PublicKey | None = None, *, trusted: TrustedKeys, workers: int = 0) -> Verdict:
    """Check that `trusted` (the log writer's keys) proves each record, then the
    chains of every model in the proven records, in log order; and, given
    seals and their public key, the seals and the proven log against each of them.
    `workers`: processes that prove the records (see replay_proofs.workers_for);
    the verdict is the same with any number."""
    if seals and public_key is None:
        raise ValueError("checking seals needs the public key they were signed for")
    # Each model's chain is checked as its events come, so what is kept is a
    # model's walk so far, not the events: a log of any length fits in memory.
    chains: dict[str, ChainWalk] = {}
    index = LogIndex(sealed_places(seals))
    breaks: list[Break] = []
    count = 0
    with cycle_collection_paused(), Provers(trusted, workers) as provers:
        for record, problem, fields in provers.places(records, _value):
            count += 1
            placed = _placed(record, problem, fields)
            if isinstance(placed, Break):
                breaks.append(placed)
                continue
            model = placed["model"]
            walk = chains.get(model)
            if walk is None:
                walk = chains[model] = ChainWalk(model)
            walk.step(record.partition, record.offset, placed)
            index.add(placed)
    for walk in chains.values():
        breaks += walk.breaks
    seal_breaks = check_seals(seals, public_key, index) if seals and public_key is not None else []
    return Verdict(models=len(chains), events=count, breaks=breaks, seals=len(seals), seal_breaks=seal_breaks)


def _value(record: StoredRecord) -> bytes:
    return record.value


def _placed(record: StoredRecord, problem: str | None, fields: dict[str, Any] | None) -> dict[str, Any] | Break:
    """A proven record's PLACE fields; else the break that names it."""
    if problem == UNREADABLE or fields is None or "model" not in fields:
        try:  # parsed again for the parser's own words: rare, and only for a broken log
            fields = json.loads(record.value)
            fields["model"]
        except (ValueError, KeyError, TypeError) as error:
            return Break("?", None, record.partition, record.offset, f"unreadable record: {error}")
    assert fields is not None
    if problem is not None:
        unproven = Refused(fields, problem)
        return Break(unproven.model or "?", unproven.seq, record.partition, record.offset,
                     f"{problem} (event {unproven.event_id or '?'}; not proven to come from"
                     " the log's writer, left out of the chain)")
    return fields


class ChainWalk:
    """One model's chain, checked an event at a time in log order: the seq it
    is at, the hash the next event must link to, the offset of each seq seen
    (to name a fork's first event) and the breaks found so far."""

    __slots__ = ("breaks", "model", "prev_hash", "seen", "seq")

    def __init__(self, model: str):
        self.model = model
        self.seq = 0
        # As stored: a record changed on disk may have lost its hash. Its content
        # was checked against its hash when it was proven, so only the links are left.
        self.prev_hash: object = GENESIS_HASH
        self.seen: dict[object, int] = {}  # seq as stored -> the offset of the first event there
        self.breaks: list[Break] = []

    def step(self, partition: int, offset: int, fields: dict[str, Any]) -> None:
        at = fields.get("seq")
        if at in self.seen:
            self._broken(partition, offset, at,
                         f"fork: a second event at seq {at} (the first is at offset {self.seen[at]})")
            return
        self.seen[at] = offset
        if at != self.seq + 1:
            self._broken(partition, offset, at, f"expected seq {self.seq + 1} here, found {at}"
                         + (" (an event is missing)" if isinstance(at, int) and at > self.seq + 1 else
                            " (out of order)"))
        elif fields.get("prev_hash") != self.prev_hash:
            self._broken(partition, offset, at, f"prev_hash does not link to seq {self.seq}")
        self.prev_hash, self.seq = fields.get("hash"), at if isinstance(at, int) else self.seq

    def _broken(self, partition: int, offset: int, at: Any, problem: str) -> None:
        self.breaks.append(Break(self.model, at, partition, offset, problem))
