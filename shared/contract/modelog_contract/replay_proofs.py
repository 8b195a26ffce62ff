"""Proving a whole log at replay speed: the records of `modelog audit verify`
and of a rebuild, a chunk at a time, with the signatures checked at the ends
of each chain run rather than on every event.

A reader of the live log proves each event as it comes (proven.proven_event:
its hash, then its Ed25519 signature). A replay reads thousands of events of
the same models in a row, and an Ed25519 verification costs more than
everything else it does with an event. Events are hash-chained per model, so
a valid signature on a model's newest event in a chunk proves every earlier
event that links up to it (decision 0013): a chunk's records are refused as
proven.proof_problem refuses them, at the cost of two signatures per model
per chunk, not one per event. That and the parse, canonical JSON and sha256
need nothing but the records: a long replay can prove its chunks in worker
processes while it reads and folds.
"""

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from modelog_contract.proven import UNREADABLE, stored_fields
from modelog_contract.signing import TrustedKeys

Fields = dict[str, Any]
# What a verifier keeps of an event (its place in the chain, what a refusal
# names); a worker hands back these few fields rather than the whole event.
PLACE = ("model", "seq", "prev_hash", "hash", "event_id")
# Records proven together. A chunk proves each model's run in it with two
# signature checks, so it pays in events per model: a replay reads its
# partitions' fetches interleaved, and 2,000 records over 2,000 models held
# about one event each (audit verify then checked a signature for most events).
CHUNK = 20_000
PROVED_ALONE_BELOW = 20_000  # records: a log this short is proven before a pool of workers has started
Item = TypeVar("Item")


# Per model, the (seq, hash) of the proven event its run ended on in the
# chunks before: a run that links to it goes on from there.
OpenRuns = dict[str, tuple[int, Any]]


def chunk_proofs(values: Sequence[bytes | str], trusted: TrustedKeys,
                 open_runs: OpenRuns | None = None) -> tuple[list[Fields | None], list[str | None]]:
    """Each record's fields as stored (None: not a JSON object) and its
    proof_problem (None: proven). Within the chunk, a model's events whose
    claims hold (trusted.claim_problem: a trusted key's signature, the hash
    their content's) and that link one to the next (seq + 1, prev_hash the
    previous hash) form a run. A run's first and newest signatures are
    checked: valid, they prove every event of the run. Newest events whose
    signatures fail are refused one by one, back to the first that verifies.
    A second event at a seq the chunk already holds is a run of its own.

    `open_runs`, given with the chunks of one log in order, carries each
    model's run from one chunk to the next, as if they were one chunk: a run
    whose first event links to the proven event its model's run ended on
    needs no check of that first event, so a chunk costs one signature per
    model in it, not two. Updated in place."""
    with cycle_collection_paused():
        return _chunk_proofs(values, trusted, {} if open_runs is None else open_runs)


def _chunk_proofs(values: Sequence[bytes | str], trusted: TrustedKeys,
                  open_runs: OpenRuns) -> tuple[list[Fields | None], list[str | None]]:
    parsed = [stored_fields(value) for value in values]
    problems: list[str | None] = [UNREADABLE if fields is None else trusted.claim_problem(fields)
                                  for fields in parsed]
    runs: dict[str, list[Fields]] = {}  # per model, its open run
    closed: list[list[Fields]] = []
    going_on: set[int] = set()  # id() of the runs that go on from the chunks before
    for fields, problem in zip(parsed, problems, strict=True):
        if fields is None or problem is not None:
            continue
        model, seq = fields.get("model"), fields.get("seq")
        run = runs.get(model) if isinstance(model, str) else None
        if run is not None and _links(run[-1], fields):
            run.append(fields)
        elif isinstance(model, str) and type(seq) is int and (run is None or _after(run[-1], seq)):
            if run is not None:
                closed.append(run)
            runs[model] = [fields]
            ended_on = open_runs.get(model) if run is None else None
            if ended_on is not None and seq == ended_on[0] + 1 and fields.get("prev_hash") == ended_on[1]:
                going_on.add(id(runs[model]))
        else:  # a fork, or no chain place to speak of: proven alone
            closed.append([fields])
    unsigned: dict[int, str] = {}  # id(fields) -> why its signature fails
    for run in [*closed, *runs.values()]:
        for fields in reversed(run):
            if (problem := trusted.signature_problem(fields)) is None:
                break
            unsigned[id(fields)] = problem
        else:
            continue  # each was checked
        if fields is not run[0] and id(run) not in going_on and (
                problem := trusted.signature_problem(run[0])) is not None:
            unsigned[id(run[0])] = problem
    for model, run in runs.items():
        if id(run[-1]) in unsigned:
            open_runs.pop(model, None)  # its newest is refused: the next chunk's run starts afresh
        else:
            open_runs[model] = (run[-1]["seq"], run[-1].get("hash"))
    return parsed, [unsigned.get(id(fields)) if problem is None else problem
                    for fields, problem in zip(parsed, problems, strict=True)]


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """A replay makes millions of objects that live on (a chunk's parsed
    records, a verifier's chains, a rebuild's rows), and no cycles: Python's
    cycle collector would scan them again and again for nothing (15-20% of a
    replay's CPU). Reference counting still frees what is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _after(previous: Fields, seq: int) -> bool:
    """Whether `seq` is past the newest seq of the model's open run (else a fork)."""
    newest = previous.get("seq")
    return type(newest) is int and seq > newest


def _links(previous: Fields, fields: Fields) -> bool:
    """Whether `fields` is the event right after `previous` in its chain."""
    seq, after = previous.get("seq"), fields.get("seq")
    return (type(seq) is int and type(after) is int and after == seq + 1
            and fields.get("prev_hash") == previous.get("hash"))


def chunk_problems(values: Sequence[bytes | str], trusted: TrustedKeys,
                   open_runs: OpenRuns | None = None) -> list[str | None]:
    """Each record's proof_problem (None: proven)."""
    return chunk_proofs(values, trusted, open_runs)[1]


def chunk_places(values: Sequence[bytes | str], trusted: TrustedKeys,
                 open_runs: OpenRuns | None = None) -> list[tuple[str | None, Fields | None]]:
    """Each record's proof_problem with the PLACE fields it has (None: not a JSON object)."""
    parsed, problems = chunk_proofs(values, trusted, open_runs)
    return [(problem, None if fields is None else {k: fields[k] for k in PLACE if k in fields})
            for fields, problem in zip(parsed, problems, strict=True)]


_worker_trust: TrustedKeys | None = None


def _trust(trusted: TrustedKeys) -> None:
    global _worker_trust
    _worker_trust = trusted


def _problems(values: list[bytes]) -> list[str | None]:
    assert _worker_trust is not None, "a proving worker starts with the reader's trusted keys"
    return chunk_problems(values, _worker_trust)


def _places(values: list[bytes]) -> list[tuple[str | None, Fields | None]]:
    assert _worker_trust is not None, "a proving worker starts with the reader's trusted keys"
    return chunk_places(values, _worker_trust)


class Provers:
    """Worker processes that prove chunks of records for a reader trusting
    `trusted`; without workers, the calling process proves them itself (a
    short log is proven before a pool would have started)."""

    def __init__(self, trusted: TrustedKeys, workers: int = 0):
        self.trusted = trusted
        # Chunks handed out before the oldest is waited for: the workers stay busy.
        self.depth = 2 * workers
        # spawn, not fork: the caller may hold an event loop and connections.
        self.pool = ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), initializer=_trust,
                                        initargs=(trusted,)) if workers else None
        # Proven here, one chunk after the other, the chunks carry their runs
        # on; workers prove chunks side by side, each on its own.
        self.open_runs: OpenRuns = {}

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
        done.set_result(chunk_problems(values, self.trusted, self.open_runs))
        return done

    def places(self, items: Iterable[Item],
               value_of: Any) -> Iterator[tuple[Item, str | None, Fields | None]]:
        """Each item with its record's proof problem and PLACE fields, in
        order; a few chunks are in the workers at once, so they prove while
        the caller goes on."""
        pending: deque[tuple[Sequence[Item], Future[list[tuple[str | None, Fields | None]]]]] = deque()
        for chunk in chunked(items):
            values = [value_of(item) for item in chunk]
            if self.pool is not None:
                pending.append((chunk, self.pool.submit(_places, values)))
            else:
                done: Future[list[tuple[str | None, Fields | None]]] = Future()
                done.set_result(chunk_places(values, self.trusted, self.open_runs))
                pending.append((chunk, done))
            if len(pending) > self.depth:
                yield from _with_places(*pending.popleft())
        while pending:
            yield from _with_places(*pending.popleft())


def _with_places(chunk: Sequence[Item], places: "Future[list[tuple[str | None, Fields | None]]]",
                 ) -> Iterator[tuple[Item, str | None, Fields | None]]:
    for item, (problem, fields) in zip(chunk, places.result(), strict=True):
        yield item, problem, fields


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
    if records < PROVED_ALONE_BELOW or os.getloadavg()[0] > cores - 0.5:
        return 0
    return cores
