"""Small builders that keep the domain tests in given / when / then form."""

from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

from modelog_contract.domain import DEFAULT_WINDOW, IdempotencyWindow, ModelState, decide, evolve
from modelog_contract.domain.commands import CreateModel, RegisterVersion
from modelog_contract.domain.types import Actor, Artifact

ALICE = Actor(subject="alice", roles=("publisher",))          # a data scientist
BOB = Actor(subject="bob", roles=("approver",))               # a reviewer
CAROL = Actor(subject="carol", roles=("approver",))           # another reviewer
OPS = Actor(subject="olga", roles=("operator",))              # on call
T0 = datetime(2026, 11, 2, 9, 14, tzinfo=timezone.utc)        # a Monday
MODEL = "fraud-detector"


def artifact(n: int = 1) -> Artifact:
    return Artifact(uri=f"s3://modelog-artifacts/sha256/{n:064x}", sha256=f"{n:064x}", size=n)


def register(model: str = MODEL, n: int = 1, command_id: UUID | None = None, **fields) -> RegisterVersion:
    fields.setdefault("actor", ALICE)
    return RegisterVersion(command_id=command_id or uuid4(), model=model,
                           issued_at=T0 + timedelta(seconds=n), artifact=artifact(n), **fields)


def create(model: str = MODEL, **fields) -> CreateModel:
    return CreateModel(command_id=uuid4(), model=model, actor=ALICE, issued_at=T0, **fields)


def command(kind, actor: Actor = ALICE, at: datetime = T0, model: str = MODEL, **fields):
    """Any command, with the envelope filled in."""
    return kind(command_id=uuid4(), model=model, actor=actor, issued_at=at, **fields)


class Scenario:
    """A model's history, decided one command at a time, folded under `window`."""

    def __init__(self, model: str = MODEL, window: IdempotencyWindow = DEFAULT_WINDOW):
        self.state = ModelState(name=model)
        self.window = window
        self.events = []

    def given(self, *commands) -> "Scenario":
        for each in commands:
            self.when(each)
        return self

    def when(self, cmd):
        new = decide(self.state, cmd)
        for event in new:
            self.state = evolve(self.state, event, self.window)
        self.events += new
        return new

    def rejected(self, cmd) -> str:
        """The reason code of the refusal (fails if the command was accepted)."""
        new = self.when(cmd)
        assert [e.type for e in new] == ["CommandRejected"], [e.type for e in new]
        return new[0].payload.reason
