"""decide(state, command) -> events and evolve(state, event) -> state.

Pure and deterministic: event ids are uuid5(command_id, i) and time is the
command's issued_at, so deciding the same command again after a crash yields
byte-identical events that every consumer recognises.
"""

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID, uuid5

from modelog.domain.chain import link_hash
from modelog.domain.commands import Command, CreateModel, RegisterVersion
from modelog.domain.events import (
    CommandRejected,
    Event,
    EventPayload,
    ModelCreated,
    VersionRegistered,
)
from modelog.domain.state import ModelState, VersionState
from modelog.domain.types import Actor

UNKNOWN_ACTOR = Actor(subject="unknown")


class Rejection(Exception):
    """Raised inside a command handler; decide turns it into a CommandRejected event."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def decide(state: ModelState, command: Command) -> list[Event]:
    if command.command_id in state.decided:
        return []  # already decided: its events are in the log once
    try:
        _check_expected_seq(state, command)
        payloads = _handle(state, command)
    except Rejection as refused:
        payloads = [CommandRejected(
            command_type=command.type, reason=refused.reason, message=refused.message
        )]
    return _seal(state, command.command_id, command.issued_at, command.actor, payloads)


def reject_malformed(state: ModelState, command_id: UUID, at: datetime, detail: str) -> list[Event]:
    """A record on the model's key that is not a valid command is refused on the record."""
    refusal = CommandRejected(command_type="unknown", reason="malformed_command", message=detail[:2000])
    return _seal(state, command_id, at, UNKNOWN_ACTOR, [refusal])


def _check_expected_seq(state: ModelState, command: Command) -> None:
    if command.expected_seq is not None and command.expected_seq != state.seq:
        raise Rejection(
            "version_conflict",
            f"model {command.model!r} is at seq {state.seq}, not {command.expected_seq}",
        )


def _handle(state: ModelState, command: Command) -> list[EventPayload]:
    match command:
        case CreateModel():
            if state.exists:
                raise Rejection("model_exists", f"model {command.model!r} already exists")
            return [ModelCreated(description=command.description, tags=command.tags)]
        case RegisterVersion():
            created = [] if state.exists else [ModelCreated()]
            return created + [VersionRegistered(
                version=state.next_version,
                artifact=command.artifact,
                run_id=command.run_id,
                description=command.description,
                params=command.params,
                metrics=command.metrics,
                tags=command.tags,
                extra=command.extra,
            )]
    raise Rejection("unknown_command", f"no handler for {command.type}")  # pragma: no cover


def _seal(
    state: ModelState, command_id: UUID, at: datetime, actor: Actor, payloads: list[EventPayload]
) -> list[Event]:
    """Give each payload its envelope: id, seq and the link to the previous hash."""
    events: list[Event] = []
    prev_hash, seq = state.head_hash, state.seq
    for i, payload in enumerate(payloads):
        seq += 1
        fields = {
            "event_id": event_id(command_id, i),
            "type": payload.type,
            "schema_version": 1,
            "model": state.name,
            "seq": seq,
            "prev_hash": prev_hash,
            "occurred_at": at,
            "command_id": command_id,
            "actor": actor,
            "closes_decision": i == len(payloads) - 1,
            "payload": payload,
        }
        unhashed = Event.model_construct(**fields, hash="").model_dump(mode="json")
        event = Event(**fields, hash=link_hash(prev_hash, unhashed))
        events.append(event)
        prev_hash = event.hash
    return events


def event_id(command_id: UUID, index: int) -> UUID:
    return uuid5(command_id, str(index))


def evolve(state: ModelState, event: Event) -> ModelState:
    changes: dict = {
        "seq": event.seq,
        "head_hash": event.hash,
        "decided": state.decided | {event.command_id},
    }
    match event.payload:
        case ModelCreated():
            changes["exists"] = True
        case VersionRegistered(version=number, artifact=artifact):
            changes["versions"] = {**state.versions, number: VersionState(version=number, artifact=artifact)}
        case CommandRejected():
            pass
    return state.model_copy(update=changes)


def fold(name: str, events: Iterable[Event]) -> ModelState:
    state = ModelState(name=name)
    for event in events:
        state = evolve(state, event)
    return state
