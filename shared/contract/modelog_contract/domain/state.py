"""The state the decider needs of one model, folded from its events.

What grows with a model's history (its versions, the command ids it decided)
lives in persistent maps, and what a decision asks of it (the last version
number, the versions in Production and Staging) is kept as it changes: evolve
and decide cost the same at a model's millionth event as at its first.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from immutables import Map
from pydantic import Field, model_validator

from modelog_contract.domain.chain import GENESIS_HASH
from modelog_contract.domain.idempotency import NOTHING_DECIDED, DecidedCommands
from modelog_contract.domain.persistent import PersistentMap
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.splits import TrafficSplit
from modelog_contract.domain.types import Frozen, Stage, VersionFacts

# The shape of a ModelState in JSON. Whoever stores states (snapshots,
# checkpoints) records it beside them and refuses a stored state of another
# shape: that one is folded again from the log instead. Changed whenever a
# field is added, removed or changes meaning.
STATE_SCHEMA = "model-state/3"

# The stages whose live versions a state indexes: the ones decisions ask about.
INDEXED_STAGES: tuple[Stage, ...] = ("Production", "Staging")


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
    versions: PersistentMap[int, VersionState] = Field(default_factory=Map)
    aliases: dict[str, Alias] = {}
    pending: dict[UUID, PendingTransition] = {}
    settled: dict[UUID, SettledTransition] = {}  # oldest first, at most SETTLED_REMEMBERED
    policy: Policy | None = None  # None: DEFAULT_POLICY applies
    traffic_split: TrafficSplit | None = None  # None: the Production version serves every request
    # Command ids decided within the idempotency window: a retried command
    # yields its events once (see idempotency.py).
    decided: DecidedCommands = NOTHING_DECIDED
    # Derived from `versions`, so not stored; evolve keeps them current.
    last_version: int = Field(0, exclude=True)  # deleted versions keep their number
    live_in: dict[Stage, frozenset[int]] = Field({}, exclude=True)  # per INDEXED_STAGES

    @model_validator(mode="after")
    def _index(self) -> "ModelState":
        # Runs on construction and on reading a stored state, never in evolve.
        object.__setattr__(self, "last_version", max(self.versions, default=0))
        object.__setattr__(self, "live_in", {stage: frozenset(
            n for n, v in self.versions.items() if v.stage == stage and not v.deleted) for stage in INDEXED_STAGES})
        return self

    @property
    def next_version(self) -> int:
        return self.last_version + 1

    def production_version(self) -> VersionState | None:
        live = self.live_in["Production"]
        return self.versions[max(live)] if live else None

    def versions_in(self, stage: Stage) -> list[int]:
        if stage in self.live_in:
            return sorted(self.live_in[stage])
        # Only refusals list the others: a scan is fine there.
        return sorted(n for n, v in self.versions.items() if v.stage == stage and not v.deleted)

    def with_version(self, version: VersionState) -> dict[str, object]:
        """The fields that change when `version` is set (registered, updated,
        moved, deleted): for evolve's model_copy, which keeps the indexes current."""
        before = self.versions.get(version.version)
        changes: dict[str, object] = {"versions": self.versions.set(version.version, version)}
        if version.version > self.last_version:
            changes["last_version"] = version.version
        was = None if before is None or before.deleted else before.stage
        now = None if version.deleted else version.stage
        if was != now:
            live_in = dict(self.live_in)
            for stage in INDEXED_STAGES:
                if stage == was:
                    live_in[stage] = live_in[stage] - {version.version}
                if stage == now:
                    live_in[stage] = live_in[stage] | {version.version}
            changes["live_in"] = live_in
        return changes
