"""Events: facts, named in the past tense. Each is one envelope with a typed payload.

Events are never rewritten: a change of shape gets a new schema_version and an
upcaster, so old events keep replaying.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, model_validator

from modelog.domain.types import Actor, Artifact, Frozen, ModelName, Sha256


class ModelCreated(Frozen):
    type: Literal["ModelCreated"] = "ModelCreated"
    description: str = ""
    tags: dict[str, str] = {}


class VersionRegistered(Frozen):
    type: Literal["VersionRegistered"] = "VersionRegistered"
    version: int = Field(ge=1)
    artifact: Artifact
    run_id: str | None = None
    description: str = ""
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    extra: dict[str, Any] = {}


class CommandRejected(Frozen):
    """A refusal is a fact too: the trail shows attempts, not only successes."""

    type: Literal["CommandRejected"] = "CommandRejected"
    command_type: str
    reason: str
    message: str


EventPayload = Annotated[
    ModelCreated | VersionRegistered | CommandRejected, Field(discriminator="type")
]


class Event(Frozen):
    """The envelope every fact travels in; `hash` chains it to the model's previous event."""

    event_id: UUID
    type: str
    schema_version: int = 1
    model: ModelName
    seq: int = Field(ge=1)
    prev_hash: Sha256
    hash: Sha256
    occurred_at: datetime
    command_id: UUID
    actor: Actor
    # True on the last event of its command's decision, so a reader knows when
    # an outcome is whole (a decision may span several events).
    closes_decision: bool = True
    payload: EventPayload

    @model_validator(mode="after")
    def _type_names_payload(self) -> "Event":
        if self.type != self.payload.type:
            raise ValueError(f"envelope type {self.type!r} != payload type {self.payload.type!r}")
        return self
