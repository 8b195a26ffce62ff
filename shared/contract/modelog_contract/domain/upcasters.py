"""Old event shapes, brought up to today's before they are validated.

Events are never rewritten in the log. When an event's shape changes, its
schema_version goes up and an upcaster from the old version is registered
here; decoding applies the chain, so a log of any age keeps replaying. Hashes
are always checked on the stored form, never on the upcast one.
"""

from collections.abc import Callable
from typing import Any

RawEvent = dict[str, Any]

# (event type, schema_version it reads) -> function returning the next version.
UPCASTERS: dict[tuple[str, int], Callable[[RawEvent], RawEvent]] = {}


def upcast(raw: RawEvent) -> RawEvent:
    while (step := UPCASTERS.get((raw.get("type", ""), raw.get("schema_version", 1)))) is not None:
        before = raw.get("schema_version", 1)
        raw = step(raw)
        if raw.get("schema_version", 1) <= before:
            raise ValueError(f"upcaster for {raw.get('type')} v{before} did not raise the version")
    return raw
