"""The sentinel's book as bytes, so that a restart folds the log's tail after
it rather than the whole log (decision 0015): what a snapshot holds, and
every reason its bytes are refused.

A header line names the format, the state schema and the sha256 of the rest.
A line of metadata follows: the log position the book covers (per partition,
the next offset to read and the last event folded), the default policy and
its stream's head, and the count of models. Then one line per model: its name,
the versions it had in Production, when each version took its serving role,
and its ModelState as JSON, separated by tabs. Compact JSON never holds a raw
tab or newline, so the lines split without a parser, and each state stays as
its JSON (at rest, Book.rest) until the sentinel first needs it.

Pure: no I/O here. Follower reads and writes the file, and checks a book
against the log before it goes on from it.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime

import orjson

from modelog_contract.domain.policy import Policy
from modelog_contract.domain.state import STATE_SCHEMA
from sentinel.book import Book

FORMAT = 1


class SnapshotRefused(Exception):
    """Bytes the sentinel must not go on from, and why."""


@dataclass(frozen=True)
class Position:
    """How far into modelog.events a book has folded, per partition."""

    next_offsets: dict[int, int]  # the next offset to read: every record before it is folded
    last_events: dict[int, tuple[int, str]]  # (offset, hash) of the last event folded, where there is one


def encode(book: Book, position: Position, written_at: datetime) -> bytes:
    """The book and the position it covers, as bytes."""
    return sealed(lines_of(book, position, written_at))


def lines_of(book: Book, position: Position, written_at: datetime) -> list[bytes]:
    """What a snapshot holds of the book now, as lines: taken at once, between
    two batches of the fold; `sealed` may then run in a thread while the
    sentinel goes on asking the book. Rests the book first: a state already
    at rest is written as the JSON it is kept as."""
    book.rest()
    states = {**book.resting, **{name: state.model_dump_json().encode() for name, state in book.states.items()}}
    meta = {"written_at": written_at.isoformat(), "events": book.events, "models": len(states),
            "next_offsets": position.next_offsets,
            "last_events": {p: list(last) for p, last in position.last_events.items()},
            "default_policy": book.default_policy.model_dump(mode="json"),
            "policy_head": list(book.policy_head)}
    return [orjson.dumps(meta, option=orjson.OPT_NON_STR_KEYS),
            *(b"\t".join((orjson.dumps(name), orjson.dumps(book.productions.get(name, [])),
                           orjson.dumps({str(v): at.isoformat() for v, at in book.since.get(name, {}).items()}),
                           state))
              for name, state in states.items())]


def sealed(lines: list[bytes]) -> bytes:
    """The lines under their header."""
    body = b"\n".join(lines)
    header = {"format": FORMAT, "state_schema": STATE_SCHEMA, "sha256": hashlib.sha256(body).hexdigest()}
    return orjson.dumps(header) + b"\n" + body


def decode(data: bytes) -> tuple[Book, Position]:
    """The book and position the bytes hold, whole and of today's shape; else SnapshotRefused saying why."""
    head_end = data.find(b"\n")
    try:
        if head_end < 0:
            raise ValueError("no line ends it")
        header = orjson.loads(data[:head_end])
        digest, form, schema = str(header["sha256"]), header["format"], header["state_schema"]
    except (ValueError, KeyError, TypeError) as error:
        raise SnapshotRefused(f"no readable header ({error})") from error
    if form != FORMAT:
        raise SnapshotRefused(f"format {form}, this sentinel reads format {FORMAT}")
    if schema != STATE_SCHEMA:
        # A state of another schema would fail, or mean something else, once decoded.
        raise SnapshotRefused(f"states of schema {schema}, this sentinel folds {STATE_SCHEMA}")
    if hashlib.sha256(memoryview(data)[head_end + 1:]).hexdigest() != digest:
        raise SnapshotRefused("its body does not match its sha256")
    lines = data[head_end + 1:].split(b"\n")
    try:
        meta = orjson.loads(lines[0])
        book = Book()
        book.events = int(meta["events"])
        book.default_policy = Policy.model_validate(meta["default_policy"])
        seq, head = meta["policy_head"]
        book.policy_head = (int(seq), str(head))
        for line in lines[1:]:
            name, productions, since, state = line.split(b"\t", 3)
            model = orjson.loads(name)
            book.resting[model] = state
            if versions := [int(v) for v in orjson.loads(productions)]:
                book.productions[model] = versions
            book.since[model] = {int(v): datetime.fromisoformat(at) for v, at in orjson.loads(since).items()}
        if len(book.resting) != meta["models"]:
            raise SnapshotRefused(f"{len(lines) - 1} model lines name {len(book.resting)} models, "
                                  f"its metadata says {meta['models']}")
        position = Position(next_offsets={int(p): int(o) for p, o in meta["next_offsets"].items()},
                            last_events={int(p): (int(o), str(h)) for p, (o, h) in meta["last_events"].items()})
    except SnapshotRefused:
        raise
    except (ValueError, KeyError, TypeError) as error:
        raise SnapshotRefused(f"unreadable body ({error})") from error
    return book, position
