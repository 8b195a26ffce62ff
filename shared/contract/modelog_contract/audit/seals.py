"""Audit seals: signed, chained snapshots of every model's chain head.

The hash chains prove each model's history is internally consistent, but a
log rewritten from some event on, with every hash recomputed, is consistent
too. A seal pins what the heads were at a moment, signed with a key the log's
writer does not hold; a rewritten history then disagrees with the seal at the
sealed seq (its hash there differs, or the seq is gone).

A seal holds:
- `heads`: (model, seq, hash) of every model's last event, sorted by model;
- `root`: a Merkle root over the heads, so one head can be proven against a
  root without the others (the tree of RFC 6962, domain-separated):
      leaf  = sha256(0x00 ‖ canonical JSON {"hash", "model", "seq"})
      node  = sha256(0x01 ‖ left ‖ right)
      root of n leaves = node(root of the first k, root of the rest), k the
      largest power of two below n; of one leaf, that leaf; of none, sha256("")
- `number`, `sealed_at` and `previous`: the digest of the seal before it
  (64 zeros for the first), so seals chain as events do: a seal dropped or
  changed in the middle breaks the next one's link;
- `key_id` (sha256 of the raw Ed25519 public key) and `signature`: Ed25519
  over b"modelog-seal-v1\\x00" ‖ canonical JSON of every other field.
The seal's digest is sha256 of that same signed message.

Pure: no I/O, the time and the key are given.
"""

import base64
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

from modelog_contract.domain.chain import GENESIS_HASH, canonical_json
from modelog_contract.signing import key_id

SEAL_VERSION = 1
SIGNATURE_CONTEXT = b"modelog-seal-v1\x00"
LEAF, NODE = b"\x00", b"\x01"
FIRST_PREVIOUS = GENESIS_HASH


class Head(BaseModel):
    """A model's chain head: its last event's seq and hash."""

    model_config = ConfigDict(frozen=True)

    model: str
    seq: int
    hash: str


class Seal(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int = SEAL_VERSION
    number: int
    sealed_at: datetime
    previous: str
    heads: tuple[Head, ...]
    root: str
    key_id: str
    signature: str

    def signed_fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"signature"})

    @property
    def digest(self) -> str:
        return hashlib.sha256(signed_message(self.signed_fields())).hexdigest()

    @property
    def object_name(self) -> str:
        """Its S3 key under seals/: zero-padded number first, so names list in seal (and time) order."""
        return f"seals/{self.number:012d}-{self.sealed_at.strftime('%Y%m%dT%H%M%S%fZ')}.json"


class SealBreak(BaseModel):
    """One way the log, or a seal, disagrees with what was sealed."""

    model_config = ConfigDict(frozen=True)

    seal: int
    model: str | None
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.model} seq {self.seq}" if self.model is not None else "the seal itself"
        return f"seal {self.seal}: {where}: {self.problem}"


def leaf_hash(head: Head) -> bytes:
    return hashlib.sha256(LEAF + canonical_json(head.model_dump(mode="json"))).digest()


def merkle_root(heads: Sequence[Head]) -> str:
    """The root over heads in the order given (a seal's are sorted by model)."""
    return _root([leaf_hash(h) for h in heads]).hex()


def _root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)  # largest power of two below n
    return hashlib.sha256(NODE + _root(leaves[:split]) + _root(leaves[split:])).digest()


def signed_message(fields: dict[str, Any]) -> bytes:
    return SIGNATURE_CONTEXT + canonical_json(fields)


def make_seal(heads: Iterable[Head], previous: Seal | None, key: Ed25519PrivateKey, at: datetime) -> Seal:
    """Seal these heads, chained to `previous` (None for the first seal)."""
    ordered = tuple(sorted(heads, key=lambda h: h.model))
    if len({h.model for h in ordered}) != len(ordered):
        raise ValueError("one head per model")
    if at.tzinfo is None:
        raise ValueError("the seal time must be timezone-aware")
    at = at.astimezone(timezone.utc)
    if previous is not None and at < previous.sealed_at:
        raise ValueError(f"a seal at {at} cannot follow one made at {previous.sealed_at}")
    unsigned = Seal(number=previous.number + 1 if previous else 1, sealed_at=at,
                    previous=previous.digest if previous else FIRST_PREVIOUS, heads=ordered,
                    root=merkle_root(ordered), key_id=key_id(key.public_key()), signature="")
    signature = key.sign(signed_message(unsigned.signed_fields()))
    return unsigned.model_copy(update={"signature": base64.b64encode(signature).decode("ascii")})


def check_seal(seal: Seal, public_key: Ed25519PublicKey) -> list[SealBreak]:
    """Whether the seal is what its signer made: signed by this key, its
    heads one per model in order, its root theirs. [] when it holds."""
    found = []

    def broken(problem: str) -> None:
        found.append(SealBreak(seal=seal.number, model=None, seq=None, problem=problem))

    if seal.version != SEAL_VERSION:
        broken(f"unknown seal version {seal.version}")
    if seal.key_id != key_id(public_key):
        broken(f"signed by key {seal.key_id[:16]}…, not the seal key {key_id(public_key)[:16]}…")
    try:
        public_key.verify(base64.b64decode(seal.signature, validate=True), signed_message(seal.signed_fields()))
    except (InvalidSignature, ValueError):
        broken("the signature does not verify (the seal was changed or not signed with the seal key)")
    models = [h.model for h in seal.heads]
    if models != sorted(set(models)):
        broken("heads are not one per model in model order")
    if merkle_root(seal.heads) != seal.root:
        broken("the Merkle root does not match the heads")
    return found


def check_seal_chain(seals: Sequence[Seal]) -> list[SealBreak]:
    """Seals in number order: each links to the one before, numbers follow on,
    time does not go back, and no sealed model's seq goes back."""
    found = []
    before: Seal | None = None
    for seal in seals:
        def broken(problem: str, model: str | None = None, seq: int | None = None) -> None:
            found.append(SealBreak(seal=seal.number, model=model, seq=seq, problem=problem))

        expected = before.number + 1 if before else 1
        if seal.number != expected:
            broken(f"expected seal {expected} here (a seal is missing or out of order)")
        if seal.previous != (before.digest if before else FIRST_PREVIOUS):
            broken(f"does not link to seal {before.number if before else 'genesis'}"
                   " (`previous` is not its digest)")
        if before is not None:
            if seal.sealed_at < before.sealed_at:
                broken(f"sealed at {seal.sealed_at}, before seal {before.number}")
            now = {h.model: h.seq for h in seal.heads}
            for head in before.heads:
                if head.model not in now:
                    broken(f"sealed in seal {before.number}, missing here", head.model, head.seq)
                elif now[head.model] < head.seq:
                    broken(f"sealed at seq {head.seq} in seal {before.number}, at {now[head.model]} here",
                           head.model, now[head.model])
        before = seal
    return found


class LogIndex:
    """What the seal checks need of a log, read once: every model's last seq,
    and the hashes found at the (model, seq) pairs that were asked for."""

    def __init__(self, wanted: Iterable[tuple[str, int]], events: Iterable[dict[str, Any]] = ()):
        self.wanted: dict[str, set[int]] = defaultdict(set)
        for sealed_model, sealed_seq in wanted:
            self.wanted[sealed_model].add(sealed_seq)
        self.last: dict[str, int] = {}
        # What the log holds at each wanted place; an event changed on disk may
        # hold anything there, even no hash at all.
        self.hashes: dict[tuple[str, int], list[object]] = defaultdict(list)
        for fields in events:
            self.add(fields)

    def add(self, fields: dict[str, Any]) -> None:
        """Index one more event of the log, given as its field dict."""
        model, seq = fields.get("model"), fields.get("seq")
        if not isinstance(model, str) or not isinstance(seq, int) or model not in self.wanted:
            return
        if seq > self.last.get(model, 0):
            self.last[model] = seq
        if seq in self.wanted[model]:
            self.hashes[model, seq].append(fields.get("hash"))

    def disagreements(self, seal: Seal) -> list[SealBreak]:
        found = []
        for head in seal.heads:
            def broken(problem: str) -> None:
                found.append(SealBreak(seal=seal.number, model=head.model, seq=head.seq, problem=problem))

            hashes = self.hashes.get((head.model, head.seq))
            if head.model not in self.last:
                broken("the sealed model has no events in the log")
            elif not hashes:
                broken(f"the sealed seq is missing from the log (the model's log ends at seq "
                       f"{self.last[head.model]})")
            elif other := next((h for h in hashes if h != head.hash), None):
                broken(f"the log's event here has hash {str(other)[:16]}…, the seal has {head.hash[:16]}…"
                       " (history was rewritten)")
        return found


def check_log_against_seal(seal: Seal, events: Iterable[dict[str, Any]]) -> list[SealBreak]:
    """Each sealed head must be in the log: an event of that model at that
    seq, with that hash. `events` are the log's events as field dicts
    (model, seq, hash at least). Names each model and seq that disagrees."""
    return LogIndex(((h.model, h.seq) for h in seal.heads), events).disagreements(seal)


def check_log_against_seals(seals: Sequence[Seal], public_key: Ed25519PublicKey,
                            events: Iterable[dict[str, Any]]) -> list[SealBreak]:
    """Everything `modelog audit verify` asks of the seals: each one signed
    and whole, their chain unbroken, and each sealed head in the log (read
    once for all seals)."""
    return check_seals(seals, public_key, LogIndex(sealed_places(seals), events))


def sealed_places(seals: Sequence[Seal]) -> Iterator[tuple[str, int]]:
    """The (model, seq) of every head these seals hold: what a LogIndex for them must find."""
    return ((h.model, h.seq) for seal in seals for h in seal.heads)


def check_seals(seals: Sequence[Seal], public_key: Ed25519PublicKey, index: LogIndex) -> list[SealBreak]:
    """check_log_against_seals, with the log already read into `index`
    (built for sealed_places(seals))."""
    found = check_seal_chain(seals)
    for seal in seals:
        found += check_seal(seal, public_key) + index.disagreements(seal)
    return found


def heads_of(events: Iterable[dict[str, Any]]) -> list[Head]:
    """The last (highest-seq) event of every model among these events."""
    heads: dict[str, Head] = {}
    for fields in events:
        current = heads.get(fields["model"])
        if current is None or fields["seq"] > current.seq:
            heads[fields["model"]] = Head(model=fields["model"], seq=fields["seq"], hash=fields["hash"])
    return list(heads.values())
