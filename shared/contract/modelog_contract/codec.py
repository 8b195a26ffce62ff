"""Bytes on the wire <-> domain types, validated by pydantic on the way in."""

import json

from pydantic import BaseModel, TypeAdapter

from modelog_contract.domain.commands import Command
from modelog_contract.domain.events import Event
from modelog_contract.domain.upcasters import UPCASTERS, upcast

COMMANDS: TypeAdapter[Command] = TypeAdapter(Command)
EVENTS: TypeAdapter[Event] = TypeAdapter(Event)


def encode(value: BaseModel) -> bytes:
    return value.model_dump_json().encode()


def decode_command(raw: bytes) -> Command:
    return COMMANDS.validate_json(raw)


def decode_event(raw: bytes | str) -> Event:
    """An event of any schema_version, upcast to today's shape and validated."""
    if not UPCASTERS:  # nothing to upcast: pydantic's own JSON parser is ~2x faster
        return EVENTS.validate_json(raw)
    return EVENTS.validate_python(upcast(json.loads(raw)))
