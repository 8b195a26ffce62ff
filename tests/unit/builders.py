"""Small builders that keep the domain tests in given / when / then form."""

from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

from modelog.domain import CreateModel, RegisterVersion
from modelog.domain.types import Actor, Artifact

ALICE = Actor(subject="alice", roles=("publisher",))
T0 = datetime(2026, 11, 2, 9, 14, tzinfo=timezone.utc)


def artifact(n: int = 1) -> Artifact:
    return Artifact(uri=f"s3://modelog-artifacts/sha256/{n:064x}", sha256=f"{n:064x}", size=n)


def register(model: str = "fraud-detector", n: int = 1, command_id: UUID | None = None,
             **fields) -> RegisterVersion:
    return RegisterVersion(command_id=command_id or uuid4(), model=model, actor=ALICE,
                           issued_at=T0 + timedelta(seconds=n), artifact=artifact(n), **fields)


def create(model: str = "fraud-detector", **fields) -> CreateModel:
    return CreateModel(command_id=uuid4(), model=model, actor=ALICE, issued_at=T0, **fields)
