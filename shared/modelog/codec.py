"""Bytes on the wire <-> domain types, validated by pydantic on the way in."""

from pydantic import BaseModel, TypeAdapter

from modelog.domain.commands import Command
from modelog.domain.events import Event

COMMANDS: TypeAdapter[Command] = TypeAdapter(Command)
EVENTS: TypeAdapter[Event] = TypeAdapter(Event)


def encode(value: BaseModel) -> bytes:
    return value.model_dump_json().encode()


def decode_command(raw: bytes) -> Command:
    return COMMANDS.validate_json(raw)


def decode_event(raw: bytes) -> Event:
    return EVENTS.validate_json(raw)
