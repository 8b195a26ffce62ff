"""Commands: intent, named as verbs. The promoter decides them one model at a time."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from modelog.domain.types import Actor, Artifact, Frozen, ModelName


class CommandBase(Frozen):
    command_id: UUID
    model: ModelName
    actor: Actor
    # Decide takes its clock from here, so deciding again yields the same events.
    issued_at: datetime
    # Compare-and-set: refused with version_conflict unless the model is at this seq.
    expected_seq: int | None = None


class CreateModel(CommandBase):
    type: Literal["CreateModel"] = "CreateModel"
    description: str = ""
    tags: dict[str, str] = {}


class RegisterVersion(CommandBase):
    """Register the next version; creates the model first if it does not exist."""

    type: Literal["RegisterVersion"] = "RegisterVersion"
    artifact: Artifact
    run_id: str | None = None
    description: str = ""
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    extra: dict[str, Any] = {}


Command = Annotated[CreateModel | RegisterVersion, Field(discriminator="type")]
