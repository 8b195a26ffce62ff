"""The log's writer, proven: every event carries the promoter's Ed25519 signature.

The hash chain shows an event's place and content, but anyone who can append
to modelog.events can compute a hash. So the promoter, the log's only writer,
signs each event's hash with a key only it holds, and every reader checks the
signature, and the hash under it, before the event changes anything.

A signature names its key by `key_id` (sha256 of the raw public key), so keys
can rotate: readers trust a set of public keys, each optionally retired after
an instant, past which events signed by it are refused.
"""

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from modelog_contract.domain.chain import link_hash
from modelog_contract.domain.events import Event, EventSignature

# Domain separation: an event signature can never pass for a seal's, or the reverse.
EVENT_SIGNATURE_CONTEXT = b"modelog event signature v1\n"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def signed_bytes(event_hash: str) -> bytes:
    return EVENT_SIGNATURE_CONTEXT + event_hash.encode("ascii")


def sign_event(event: Event, key: Ed25519PrivateKey) -> Event:
    """The event with the writer's signature over its hash."""
    signature = EventSignature(key_id=key_id(key.public_key()),
                               value=base64.b64encode(key.sign(signed_bytes(event.hash))).decode("ascii"))
    return event.model_copy(update={"signature": signature})


@dataclass(frozen=True)
class TrustedKey:
    public_key: Ed25519PublicKey
    # Events that say they occurred after this instant are refused under this
    # key: a retired key cannot sign anything new, and its old events still verify.
    retired_after: datetime | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # The key object cannot be pickled; its raw bytes can, so a reader can
        # hand its trusted keys to worker processes that prove records for it.
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return _trusted_key_from_raw, (raw, self.retired_after)


def _trusted_key_from_raw(raw: bytes, retired_after: datetime | None) -> TrustedKey:
    return TrustedKey(Ed25519PublicKey.from_public_bytes(raw), retired_after)


class TrustedKeys:
    """The writer keys a reader accepts, by key id."""

    def __init__(self, keys: Iterable[TrustedKey]):
        self.by_id: Mapping[str, TrustedKey] = {key_id(k.public_key): k for k in keys}

    def __bool__(self) -> bool:
        return bool(self.by_id)

    def problem(self, fields: Mapping[str, Any]) -> str | None:
        """Why an event, as stored (its JSON fields), is not proven to come from
        the writer; None when its hash matches its content and a trusted key
        signed that hash."""
        return self.claim_problem(fields) or self.signature_problem(fields)

    def claim_problem(self, fields: Mapping[str, Any]) -> str | None:
        """`problem` short of the signature's own check: what the event claims
        (a signature by a trusted key, not retired when it occurred, over a hash
        that matches its content) is wrong. Cheap; see `signature_problem`."""
        signature = fields.get("signature")
        if not isinstance(signature, Mapping):
            return "unsigned: the event carries no writer's signature"
        trusted = self.by_id.get(str(signature.get("key_id")))
        if trusted is None:
            return f"signed by key {str(signature.get('key_id'))[:16]}…, which this reader does not trust"
        if trusted.retired_after is not None and _occurred_at(fields) > trusted.retired_after:
            return (f"signed by key {str(signature.get('key_id'))[:16]}… after it was retired "
                    f"({trusted.retired_after.isoformat()})")
        if fields.get("hash") != link_hash(str(fields.get("prev_hash", "")), fields, parsed=type(fields) is dict):
            return "hash does not match the event's content"
        return None

    def signature_problem(self, fields: Mapping[str, Any]) -> str | None:
        """The Ed25519 check of an event whose claim_problem is None: most of a
        proof's CPU."""
        signature = fields["signature"]
        try:
            self.by_id[str(signature.get("key_id"))].public_key.verify(
                base64.b64decode(str(signature.get("value", "")), validate=True), signed_bytes(str(fields["hash"])))
        except (InvalidSignature, ValueError):
            return "the writer's signature does not verify"
        return None


def _occurred_at(fields: Mapping[str, Any]) -> datetime:
    value = fields.get("occurred_at")
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
