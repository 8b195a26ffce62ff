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
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelog_contract.audit.seals import Seal, SealBreak, check_log_against_seals
from modelog_contract.domain.chain import GENESIS_HASH
from modelog_contract.proven import UNREADABLE, Refused
from modelog_contract.replay_proofs import Provers, cycle_collection_paused
from modelog_contract.signing import TrustedKeys


@dataclass(frozen=True)
class StoredRecord:
    partition: int
    offset: int
    value: bytes


# A proven record's place in its model's chain: its partition, offset and
# PLACE fields. Not the record: its bytes are let go once it is proven.
Placed = tuple[int, int, dict[str, Any]]


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
    chains: dict[str, list[Placed]] = defaultdict(list)
    breaks: list[Break] = []
    count = 0
    # Every record read is kept (its place in its chain) until the end.
    with cycle_collection_paused(), Provers(trusted, workers) as provers:
        for record, problem, fields in provers.places(records, _value):
            count += 1
            if (broken := _place(record, problem, fields, chains)) is not None:
                breaks.append(broken)
    for model, chain in chains.items():
        breaks += _check_chain(model, chain)
    seal_breaks = check_log_against_seals(seals, public_key, (
        fields for chain in chains.values() for _, _, fields in chain)) if seals and public_key is not None else []
    return Verdict(models=len(chains), events=count, breaks=breaks, seals=len(seals), seal_breaks=seal_breaks)


def _value(record: StoredRecord) -> bytes:
    return record.value


def _place(record: StoredRecord, problem: str | None, fields: dict[str, Any] | None,
           chains: dict[str, list[Placed]]) -> Break | None:
    """Put a proven record (its place fields) in its model's chain; else the break that names it."""
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
    chains[fields["model"]].append((record.partition, record.offset, fields))
    return None


def _check_chain(model: str, chain: list[Placed]) -> list[Break]:
    found: list[Break] = []
    seen: dict[object, int] = {}  # seq as stored -> the offset of the first event there
    # As stored: a record changed on disk may have lost its hash. Its content
    # was checked against its hash when it was proven, so only the links are left.
    prev_hash: str | None = GENESIS_HASH
    seq = 0
    for partition, offset, fields in chain:
        def broken(problem: str) -> Break:
            return Break(model, fields.get("seq"), partition, offset, problem)

        at = fields.get("seq")
        if at in seen:
            found.append(broken(f"fork: a second event at seq {at} (the first is at offset {seen[at]})"))
            continue
        seen[at] = offset
        if at != seq + 1:
            found.append(broken(f"expected seq {seq + 1} here, found {at}"
                                + (" (an event is missing)" if isinstance(at, int) and at > seq + 1 else
                                   " (out of order)")))
        elif fields.get("prev_hash") != prev_hash:
            found.append(broken(f"prev_hash does not link to seq {seq}"))
        prev_hash, seq = fields.get("hash"), at if isinstance(at, int) else seq
    return found
