"""The hash chain: hash = sha256(prev_hash ‖ RFC 8785 canonical JSON of the event).

Canonical JSON makes the hash independent of key order and number formatting,
so any consumer in any language can recompute it.
"""

import hashlib
from typing import Any

import rfc8785

GENESIS_HASH = "0" * 64


def canonical(event_fields: dict[str, Any]) -> bytes:
    """The bytes that are hashed: every envelope field but `hash` itself."""
    return rfc8785.dumps({k: v for k, v in event_fields.items() if k != "hash"})


def link_hash(prev_hash: str, event_fields: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(event_fields)).hexdigest()


def first_broken_link(events: list[Any]) -> tuple[int, str] | None:
    """Check one model's events in log order: seq gapless from 1, each prev_hash
    the previous hash, each hash recomputed. Events are pydantic events or their
    stored JSON as dicts (use the stored form for events that were upcast).
    Returns (index, why) of the first bad event, or None when the chain holds."""
    prev_hash, seq = GENESIS_HASH, 0
    for index, event in enumerate(events):
        fields = event if isinstance(event, dict) else event.model_dump(mode="json")
        if fields["seq"] != seq + 1:
            return index, f"seq {fields['seq']} follows {seq}"
        if fields["prev_hash"] != prev_hash:
            return index, f"prev_hash does not link to seq {seq}"
        if fields["hash"] != link_hash(prev_hash, fields):
            return index, "hash does not match the event's content"
        prev_hash, seq = fields["hash"], fields["seq"]
    return None
