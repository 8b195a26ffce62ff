"""The state the decider needs of one model, folded from its events."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from modelog_contract.domain.chain import GENESIS_HASH
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.types import Frozen, Stage, VersionFacts


class VersionState(VersionFacts):
    version: int
    registered_by: str
    stage: Stage = "None"
    deleted: bool = False


class Approval(Frozen):
    subject: str
    at: datetime


class PendingTransition(Frozen):
    request_id: UUID
    version: int
    to_stage: Stage
    archive_existing: bool
    requested_by: str
    requested_at: datetime
    approvals_required: int
    approvals: tuple[Approval, ...] = ()


# applied: approved and moved; superseded: the version moved by another
# decision first; version_deleted: the version was deleted while pending.
SettlementOutcome = Literal["applied", "denied", "superseded", "version_deleted"]


class SettledTransition(Frozen):
    """A transition request that is no longer pending, and how it ended: kept so
    a late approval or denial is told who settled the request and when."""

    version: int
    to_stage: Stage
    outcome: SettlementOutcome
    by: str
    at: datetime
    approvers: tuple[str, ...] = ()


# Settled requests remembered per model, newest kept. Enough to answer a late or
# repeated review; every request's whole story stays in the audit trail, and the
# state a decision loads stays small however many requests a model has seen.
SETTLED_REMEMBERED = 32


class Alias(Frozen):
    version: int
    protected: bool = False


class ModelState(Frozen):
    name: str
    exists: bool = False
    deleted: bool = False
    seq: int = 0
    head_hash: str = GENESIS_HASH
    description: str = ""
    tags: dict[str, str] = {}
    versions: dict[int, VersionState] = {}
    aliases: dict[str, Alias] = {}
    pending: dict[UUID, PendingTransition] = {}
    settled: dict[UUID, SettledTransition] = {}  # oldest first, at most SETTLED_REMEMBERED
    policy: Policy | None = None  # None: DEFAULT_POLICY applies
    # Command ids already decided: a retried command yields its events once.
    decided: frozenset[UUID] = frozenset()

    @property
    def next_version(self) -> int:
        return max(self.versions, default=0) + 1  # deleted versions keep their number

    def production_version(self) -> VersionState | None:
        live = [v for v in self.versions.values() if v.stage == "Production" and not v.deleted]
        return max(live, key=lambda v: v.version, default=None)

    def versions_in(self, stage: Stage) -> list[int]:
        return sorted(n for n, v in self.versions.items() if v.stage == stage and not v.deleted)
