"""The pure core: commands, events, state and the decider. No I/O here."""

from modelog_contract.domain.commands import Command, CreateModel, RegisterVersion
from modelog_contract.domain.decider import decide, evolve, fold
from modelog_contract.domain.events import Event, EventPayload
from modelog_contract.domain.state import ModelState

__all__ = [
    "Command",
    "CreateModel",
    "Event",
    "EventPayload",
    "ModelState",
    "RegisterVersion",
    "decide",
    "evolve",
    "fold",
]
