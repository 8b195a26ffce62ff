"""A snapshot of one command partition's decider state, as bytes: what it
holds, how it is signed, and every reason its bytes are refused.

The object is gzip of a header line and a body. The header names the body's
sha256 and carries the promoter's Ed25519 signature over that digest (the
log-signing key: only the promoter can write a snapshot a restore accepts).
The body is a line of metadata (format, STATE_SCHEMA, the log position it
covers, the spent token ids) and then one line per model: its head event's
offset in modelog.events, its name, its head's seq and hash, and its
ModelState as JSON, separated by tabs. Compact JSON and model names never hold a raw tab or newline, so the
lines split without a parser. A restore keeps each state as that JSON until
the model is first needed (promoter.model_states), and a model not touched
since is written to the next snapshot as the same JSON.

Pure: no I/O here, so restore's checks are property-tested without engines.
"""

import base64
import gzip
import hashlib
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.domain import ModelState
from modelog_contract.domain.idempotency import DEFAULT_WINDOW, IdempotencyWindow
from modelog_contract.domain.state import STATE_SCHEMA
from modelog_contract.signing import TrustedKeys, key_id
from promoter.model_states import ModelStates, Stored

FORMAT = 2  # 2: each model line names its model and head, so a restore need not read the state back
# Domain separation: a snapshot's signature can never pass for an event's or a seal's.
SNAPSHOT_SIGNATURE_CONTEXT = b"modelog promoter snapshot v1\n"


class SnapshotRefused(Exception):
    """Bytes a restore must not use, and why."""


@dataclass(frozen=True)
class Cut:
    """A partition's state at one committed position of modelog.events."""

    partition: int
    events_offset: int  # the next offset of modelog.events to read: everything before it is folded
    command_offset: int  # the next command offset to decide
    last_event: tuple[int, str]  # (offset, hash) of the last event folded
    states: ModelStates
    head_offsets: Mapping[str, int]  # where each model's head event is in modelog.events
    # (token id, command id, forget after) spent by this partition's commands
    spent_tokens: tuple[tuple[str, UUID, datetime], ...]
    written_at: datetime
    window: IdempotencyWindow = DEFAULT_WINDOW  # the command ids each model remembers, as the states were folded


@dataclass
class SerialisedStates:
    """Each model's state as last serialised, by (model, seq): a state changes
    only with its seq, so only models that moved are serialised again. `idle`:
    the models the last snapshot found as the one before it had serialised
    them, untouched for a whole snapshot interval."""

    states: dict[str, Stored] = field(default_factory=dict)
    idle: set[str] = field(default_factory=set)

    def stored(self, state: ModelState) -> Stored:
        known = self.states.get(state.name)
        if known is not None and (known.seq, known.head_hash) == (state.seq, state.head_hash):
            self.idle.add(state.name)
            return known
        stored = Stored(state.seq, state.head_hash, state.model_dump_json().encode())
        self.states[state.name] = stored
        return stored


def _line(head_offset: int, name: str, stored: Stored) -> bytes:
    return b"\t".join((b"%d" % head_offset, name.encode(), b"%d" % stored.seq, stored.head_hash.encode(), stored.json))


def encode(cut: Cut, key: Ed25519PrivateKey, cache: SerialisedStates | None = None,
           compresslevel: int = 3) -> bytes:
    cache = cache if cache is not None else SerialisedStates()
    meta = {
        "format": FORMAT, "state_schema": STATE_SCHEMA, "window": cut.window.model_dump(mode="json"),
        "partition": cut.partition, "events_offset": cut.events_offset, "command_offset": cut.command_offset,
        "last_event": {"offset": cut.last_event[0], "hash": cut.last_event[1]},
        "spent_tokens": [[t, str(c), until.isoformat()] for t, c, until in cut.spent_tokens],
        "written_at": cut.written_at.isoformat(), "models": len(cut.states),
    }
    lines = [json.dumps(meta, separators=(",", ":")).encode()]
    cache.idle = set()
    lines += [_line(cut.head_offsets[name], name, cache.stored(state)) for name, state in cut.states.decoded.items()]
    # Still the JSON a snapshot held: written back as it was read.
    lines += [_line(cut.head_offsets[name], name, stored) for name, stored in cut.states.stored.items()]
    body = b"\n".join(lines)
    digest = hashlib.sha256(body).hexdigest()
    header = {"sha256": digest, "key_id": key_id(key.public_key()),
              "signature": base64.b64encode(key.sign(SNAPSHOT_SIGNATURE_CONTEXT + digest.encode())).decode()}
    return gzip.compress(json.dumps(header).encode() + b"\n" + body, compresslevel=compresslevel, mtime=0)


def decode(data: bytes, trusted: TrustedKeys, window: IdempotencyWindow = DEFAULT_WINDOW) -> Cut:
    """The cut the bytes hold, proven to be the promoter's and of today's shape;
    else SnapshotRefused saying why."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise SnapshotRefused(f"not a whole gzip stream ({error})") from error
    # The body is read where it lies in `raw`: a snapshot of many models is
    # hundreds of MB, and each copy of it costs a restart time.
    head_end = raw.find(b"\n")
    try:
        if head_end < 0:
            raise ValueError("no line ends it")
        header = json.loads(raw[:head_end])
        digest, signer, signature = str(header["sha256"]), str(header["key_id"]), str(header["signature"])
    except (ValueError, KeyError, TypeError) as error:
        raise SnapshotRefused(f"no readable header ({error})") from error
    if hashlib.sha256(memoryview(raw)[head_end + 1:]).hexdigest() != digest:
        raise SnapshotRefused("its body does not match its sha256")
    trusted_key = trusted.by_id.get(signer)
    if trusted_key is None:
        raise SnapshotRefused(f"signed by key {signer[:16]}…, which this promoter does not trust")
    try:
        trusted_key.public_key.verify(base64.b64decode(signature, validate=True),
                                      SNAPSHOT_SIGNATURE_CONTEXT + digest.encode())
    except (InvalidSignature, ValueError) as error:
        raise SnapshotRefused("the promoter's signature does not verify") from error
    meta_end = raw.find(b"\n", head_end + 1)
    meta_end = len(raw) if meta_end < 0 else meta_end
    try:
        meta = json.loads(raw[head_end + 1:meta_end])
        written_at = datetime.fromisoformat(meta["written_at"])
        # As for events: a retired key's signature counts for what it signed
        # before it was retired, so a key rotation does not cost a full replay.
        if trusted_key.retired_after is not None and written_at > trusted_key.retired_after:
            raise SnapshotRefused(f"written at {written_at.isoformat()} and signed by key {signer[:16]}…, "
                                  f"retired after {trusted_key.retired_after.isoformat()}")
        if meta["format"] != FORMAT:
            raise SnapshotRefused(f"format {meta['format']}, this promoter reads format {FORMAT}")
        if meta["state_schema"] != STATE_SCHEMA:
            raise SnapshotRefused(f"states of schema {meta['state_schema']}, this promoter folds {STATE_SCHEMA}")
        if meta["window"] != window.model_dump(mode="json"):
            # A state folded under another window remembers other command ids.
            raise SnapshotRefused(f"folded with the idempotency window {meta['window']}, "
                                  f"this promoter keeps {window.model_dump(mode='json')}")
        stored, heads, lines = {}, {}, 0
        for offset, name, state in _model_lines(raw, meta_end + 1):
            stored[name], heads[name], lines = state, offset, lines + 1
        if meta["models"] != lines:
            raise SnapshotRefused(f"{lines} model lines, its metadata says {meta['models']}")
        if len(stored) != lines:
            raise SnapshotRefused(f"{lines} model lines name {len(stored)} models")
        return Cut(
            partition=int(meta["partition"]), events_offset=int(meta["events_offset"]),
            command_offset=int(meta["command_offset"]),
            last_event=(int(meta["last_event"]["offset"]), str(meta["last_event"]["hash"])),
            states=ModelStates(stored=stored), head_offsets=heads,
            spent_tokens=tuple((str(t), UUID(c), datetime.fromisoformat(u)) for t, c, u in meta["spent_tokens"]),
            written_at=written_at, window=window,
        )
    except SnapshotRefused:
        raise
    except (ValueError, KeyError, TypeError) as error:
        raise SnapshotRefused(f"unreadable body ({error})") from error


def _model_lines(raw: bytes, at: int) -> Iterator[tuple[int, str, Stored]]:
    """(head offset, model, stored state) of each model line from `at` on; each
    state's JSON is the one copy made of its bytes."""
    while at < len(raw):
        end = raw.find(b"\n", at)
        end = len(raw) if end < 0 else end
        fields: list[bytes] = []
        for _ in range(4):
            tab = raw.find(b"\t", at, end)
            if tab < 0:
                raise ValueError(f"a model line of {len(fields) + 1} fields, not 5")
            fields.append(raw[at:tab])
            at = tab + 1
        offset, name, seq, head_hash = fields
        yield int(offset), name.decode(), Stored(int(seq), head_hash.decode(), raw[at:end])
        at = end + 1


def chain_problem(state: ModelState, seq: int, prev_hash: str) -> str | None:
    """Why an event (seq, prev_hash) does not continue `state`'s head, or None."""
    if seq != state.seq + 1:
        return f"seq {seq} follows the head at seq {state.seq}"
    if prev_hash != state.head_hash:
        return f"seq {seq}'s prev_hash is not the hash of the head at seq {state.seq}"
    return None


def head_problem(fields: Mapping[str, Any] | None, model: str, head: tuple[int, str],
                 trusted: TrustedKeys) -> str | None:
    """Why the log's record at a model's recorded head offset (its JSON fields;
    None when the log holds no record there) is not that model's head (seq,
    hash), or None."""
    if fields is None:
        return "the log holds no event at the recorded head offset"
    seq, head_hash = head
    if fields.get("model") != model or fields.get("seq") != seq or fields.get("hash") != head_hash:
        return (f"the log's event there is {fields.get('model')!r} seq {fields.get('seq')}, "
                f"not {model!r} seq {seq} with the snapshot's head hash")
    return trusted.problem(fields)
