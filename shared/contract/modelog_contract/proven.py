"""A record of modelog.events as a reader takes it: proven to come from the
log's writer, or refused with the reason.

Every reader (projections, the change feed, the promoter's restore) goes
through `proven_event` before an event changes anything. The record's bytes
are parsed once: the signature is checked on the stored form (the hash covers
it, never an upcast one), and the same dict is then decoded. The replays
(audit verify, a rebuild) prove whole chunks of records with the same checks
and fewer signature verifications: replay_proofs.py.
"""

import json
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from pydantic_core import from_json

from modelog_contract.codec import EVENTS, decode_event
from modelog_contract.domain.chain import StrictlyParsed
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


# In orjson's compact output, a float that RFC 8785 (ECMAScript) writes
# otherwise: integral ("3.0" for 3), below 1e-4 (where Python's repr turns to
# exponents; "0.0000" and more zeros), or in exponent form (orjson reads an
# integer beyond 64 bits as a float, too). Any other float orjson writes as
# the plain shortest round-trip digits, as ECMAScript and Python do (a
# property test holds it). Elsewhere they may match too (inside strings,
# 12.00001): a false alarm, which only costs the slower parse. Two searches,
# each led by a literal, scan faster than one.
_INTEGRAL_OR_TINY, _EXPONENT = re.compile(rb"\.0(?:[,}\]]|000)"), re.compile(rb"e[-+]\d+[,}\]]")


def stored_fields(raw: bytes | str) -> dict[str, Any] | None:
    """The record's JSON object, or None when it is not one. Read by orjson,
    StrictlyParsed (whose canonical JSON is cheapest) when its integers are
    safe and its floats are ones orjson writes as RFC 8785 does; else as
    pydantic's parser or the json module read it, the numbers as written."""
    try:
        fields = orjson.loads(raw)
        # Refuses integers beyond 2**53 - 1: the reference canonical JSON decides those.
        written = orjson.dumps(fields, option=orjson.OPT_STRICT_INTEGER) if type(fields) is dict else None
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # NaN, Infinity, lone surrogates, a BOM, ...
        written = None
    if written is not None and _INTEGRAL_OR_TINY.search(written) is None and _EXPONENT.search(written) is None:
        return StrictlyParsed(fields)
    try:
        # pydantic's Rust parser is about 3x json's; it refuses some JSON that
        # json takes (lone surrogates, a byte order mark), which json then reads.
        fields = from_json(raw, cache_strings="keys")  # values rarely repeat across events: caching them costs
    except ValueError:
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
