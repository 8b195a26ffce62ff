"""What a message on modelog.signals holds: one signal, or a JSON array of them.

A publisher that sees many requests a second sends them in arrays: the
sentinel's cost is mostly per Kafka message (Faust's consumer, stream and
acks), not per signal, so a message of a hundred per-request outcomes costs
little more than one. Each element is a signal of its own: one that does not
validate is dropped and counted, its neighbours are kept.
"""

from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from modelog_contract.domain.monitoring import Signal

ONE = TypeAdapter(Signal)
MANY = TypeAdapter(list[Signal])


@dataclass
class Parsed:
    signals: list[Signal] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # why, one entry per dropped signal


def signals(raw: bytes) -> Parsed:
    """The signals in one message, and why each malformed one was dropped."""
    if raw.lstrip()[:1] != b"[":
        try:
            return Parsed([ONE.validate_json(raw)])
        except ValidationError as error:
            return Parsed(malformed=[_why(error)])
    try:
        return Parsed(MANY.validate_json(raw))  # the usual case: one pass in pydantic's core
    except ValidationError as error:
        return _one_by_one(raw, error)


def _one_by_one(raw: bytes, whole: ValidationError) -> Parsed:
    """An array with a bad element: validate each, so only the bad ones are dropped."""
    try:
        elements: Any = TypeAdapter(list[Any]).validate_json(raw)
    except ValidationError:
        return Parsed(malformed=[_why(whole)])  # not an array at all (truncated, not JSON): one message lost
    parsed = Parsed()
    for n, element in enumerate(elements):
        try:
            parsed.signals.append(ONE.validate_python(element))
        except ValidationError as error:
            parsed.malformed.append(f"element {n}: {_why(error)}")
    return parsed


def _why(error: ValidationError) -> str:
    return f"{error.error_count()} errors: {error.errors()[0]['msg']}"
