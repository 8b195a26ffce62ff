"""The pure core: commands, events, state and the decider. No I/O here."""

from modelog.domain.commands import Command, CreateModel, RegisterVersion
from modelog.domain.decider import decide, evolve, fold
from modelog.domain.events import Event, EventPayload
from modelog.domain.state import ModelState

__all__ = [
    "Command", "CreateModel", "RegisterVersion", "Event", "EventPayload",
    "ModelState", "decide", "evolve", "fold",
]
