"""A record of modelog.events as a reader takes it: proven to come from the
log's writer, or refused with the reason.

Every reader (projections, the change feed, the promoter's restore, the audit
verifier) goes through `proven_event` before an event changes anything. The
record's bytes are parsed once: the signature is checked on the stored form
(the hash covers it, never an upcast one), and the same dict is then decoded.
"""

import json
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from modelog_contract.codec import EVENTS, decode_event
from modelog_contract.domain.events import Event
from modelog_contract.domain.upcasters import upcast
from modelog_contract.signing import TrustedKeys


@dataclass(frozen=True)
class Refused:
    """A record that is not proven to come from the writer: it changes nothing."""

    fields: dict[str, Any]  # as stored; empty when the record is not a JSON object
    problem: str

    @property
    def model(self) -> str | None:
        model = self.fields.get("model")
        return model if isinstance(model, str) else None

    @property
    def seq(self) -> int | None:
        seq = self.fields.get("seq")
        return seq if isinstance(seq, int) and not isinstance(seq, bool) else None

    @property
    def event_id(self) -> UUID | None:
        try:
            return UUID(str(self.fields.get("event_id")))
        except ValueError:
            return None

    def describe(self, partition: int, offset: int) -> str:
        """The event's place and the problem, for an alert an operator can act on."""
        return (f"model {self.model or '?'} seq {self.seq if self.seq is not None else '?'} "
                f"(partition {partition}, offset {offset}, event {self.event_id or '?'}): {self.problem}")


def stored_fields(raw: bytes | str) -> dict[str, Any] | None:
    """The record's JSON object, or None when it is not one."""
    try:
        fields = json.loads(raw)
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None


def proven_event(raw: bytes | str, trusted: TrustedKeys) -> Event | Refused:
    """The event, when its hash matches its content and a trusted key signed
    it; else why not. A proven record that does not validate as an event
    raises ValueError: the writer wrote it, so that is a bug to stop at."""
    fields = stored_fields(raw)
    if fields is None:
        return Refused({}, "unreadable record: not a JSON object")
    if (problem := trusted.problem(fields)) is not None:
        return Refused(fields, problem)
    return EVENTS.validate_python(upcast(fields))


UNREADABLE = "unreadable record: not a JSON object"


def proof_problem(raw: bytes | str, trusted: TrustedKeys) -> str | None:
    """What proven_event would refuse the record for, or None when it is proven."""
    fields = stored_fields(raw)
    return UNREADABLE if fields is None else trusted.problem(fields)


def proven_or_refused(raw: bytes | str, problem: str | None) -> Event | Refused:
    """proven_event's answer, given the record's proof_problem: a proven record is
    decoded straight from its bytes, a refused one kept as stored."""
    if problem is None:
        return decode_event(raw)
    return Refused(stored_fields(raw) or {}, problem)


# Proving a record (parse, canonical JSON, sha256, an Ed25519 verification) is
# most of a replay's CPU and needs nothing but the record: a long replay proves
# its records in worker processes, a chunk at a time, while it reads and folds.
CHUNK = 2000
Item = TypeVar("Item")
_worker_trust: TrustedKeys | None = None


def _trust(trusted: TrustedKeys) -> None:
    global _worker_trust
    _worker_trust = trusted


def _problems(values: list[bytes]) -> list[str | None]:
    assert _worker_trust is not None, "a proving worker starts with the reader's trusted keys"
    return [proof_problem(value, _worker_trust) for value in values]


class Provers:
    """Worker processes that prove records for a reader trusting `trusted`;
    without workers, the calling process proves them itself (a short log is
    proven before a pool would have started)."""

    def __init__(self, trusted: TrustedKeys, workers: int = 0):
        self.trusted = trusted
        # Chunks handed out before the oldest is waited for: the workers stay busy.
        self.depth = 2 * workers
        # spawn, not fork: the caller may hold an event loop and connections.
        self.pool = ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), initializer=_trust,
                                        initargs=(trusted,)) if workers else None

    def __enter__(self) -> "Provers":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def submit(self, values: list[bytes]) -> "Future[list[str | None]]":
        """The records' proof problems (None: proven), in their order."""
        if self.pool is not None:
            return self.pool.submit(_problems, values)
        done: Future[list[str | None]] = Future()
        done.set_result([proof_problem(value, self.trusted) for value in values])
        return done

    def prove(self, items: Iterable[Item], value_of: Any) -> Iterator[tuple[Item, str | None]]:
        """Each item with its record's proof problem, in order; a few chunks
        are in the workers at once, so they prove while the caller goes on."""
        pending: deque[tuple[Sequence[Item], Future[list[str | None]]]] = deque()
        for chunk in chunked(items):
            pending.append((chunk, self.submit([value_of(item) for item in chunk])))
            if len(pending) > self.depth:
                yield from _with_problems(*pending.popleft())
        while pending:
            yield from _with_problems(*pending.popleft())


def _with_problems(chunk: Sequence[Item], problems: "Future[list[str | None]]") -> Iterator[tuple[Item, str | None]]:
    return zip(chunk, problems.result(), strict=True)


def chunked(items: Iterable[Item]) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def workers_for(records: int) -> int:
    """Worker processes worth starting to prove `records` records: one per core
    for a long log on a machine with cores to spare; none for a log proven
    faster than a pool starts, or when other work already keeps every core
    busy (the workers would only add their start and hand-over to the CPU
    the proofs take anyway)."""
    cores = os.cpu_count() or 1
    if records < 10 * CHUNK or os.getloadavg()[0] > cores - 0.5:
        return 0
    return cores
