"""The pure core: commands, events, state and the decider. No I/O here."""

from modelog_contract.domain.commands import Command, CreateModel, RegisterVersion
from modelog_contract.domain.decider import decide, evolve, fold
from modelog_contract.domain.events import Event, EventPayload
from modelog_contract.domain.idempotency import DEFAULT_WINDOW, IdempotencyWindow
from modelog_contract.domain.state import STATE_SCHEMA, ModelState

__all__ = [
    "DEFAULT_WINDOW",
    "STATE_SCHEMA",
    "Command",
    "CreateModel",
    "Event",
    "EventPayload",
    "IdempotencyWindow",
    "ModelState",
    "RegisterVersion",
    "decide",
    "evolve",
    "fold",
]
