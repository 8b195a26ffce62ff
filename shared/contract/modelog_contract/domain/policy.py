"""Promotion policy as data. A PolicySet event installs one for a model, so every
policy change is in the audit trail; without one, DEFAULT_POLICY applies."""

from datetime import datetime, time
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from modelog_contract.domain.monitoring import RollbackRule
from modelog_contract.domain.types import Frozen, Stage


class MetricThreshold(Frozen):
    metric: str
    op: Literal[">=", "<=", ">", "<"]
    value: float

    def holds(self, observed: float) -> bool:
        match self.op:
            case ">=":
                return observed >= self.value
            case "<=":
                return observed <= self.value
            case ">":
                return observed > self.value
            case "<":
                return observed < self.value
        return False  # pragma: no cover - op is a closed Literal


class ChampionRule(Frozen):
    """The candidate must beat the current Production version on `metric` by `margin`."""

    metric: str
    margin: float = 0.0
    higher_is_better: bool = True


class FreezeWindow(Frozen):
    """No promotion to Production from `start` to `end` (UTC) on `weekday` (0 = Monday)."""

    weekday: int = Field(ge=0, le=6)
    start: time
    end: time

    def covers(self, at: datetime) -> bool:
        return at.weekday() == self.weekday and self.start <= at.timetz().replace(tzinfo=None) < self.end


class Policy(Frozen):
    allowed_transitions: tuple[tuple[Stage, Stage], ...] = (
        ("None", "Staging"), ("Staging", "Production"), ("Production", "Archived"),
        ("None", "Archived"), ("Staging", "Archived"),
    )
    # Archived -> Production, by an operator, without approvals: seconds matter.
    rollback_allowed: bool = True
    # k-of-n: approvals needed from holders of approver_role, per target stage.
    approvals_required: dict[Stage, int] = {"Production": 1}
    approver_role: str = "approver"
    approval_ttl_s: int = Field(7 * 24 * 3600, gt=0)
    metric_thresholds: dict[Stage, tuple[MetricThreshold, ...]] = {}
    champion: ChampionRule | None = None
    lineage_required_for: tuple[Stage, ...] = ()
    freeze_windows: tuple[FreezeWindow, ...] = ()
    # Stages only a version whose files modelog holds may reach: not one
    # registered from a source modelog could not read (an "unverified" artifact).
    verified_artifact_required_for: tuple[Stage, ...] = ()
    # The largest share of requests, in percent, a traffic split may give any
    # version but the Production one (a canary). 100: no limit of the policy's.
    max_canary_percent: int = Field(100, ge=1, le=100)
    # What the sentinel watches in the serving signals, and on which breach it
    # asks for a rollback or drops a canary (monitoring.py). None: it only watches.
    rollback_rules: tuple[RollbackRule, ...] = Field((), max_length=20)

    @model_validator(mode="after")
    def _rule_names_unique(self) -> "Policy":
        # A decision's command id derives from the rule's name: two rules of one name would be one breach.
        names = [rule.name for rule in self.rollback_rules]
        if len(set(names)) < len(names):
            raise ValueError(f"rollback_rules need distinct names: {', '.join(names)}")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_newer_rules(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Policies set before this rule existed have no such field; leaving it
        # out while empty keeps those events' bytes, and so their hashes, as stored.
        fields: dict[str, Any] = handler(self)
        if not fields.get("verified_artifact_required_for"):
            fields.pop("verified_artifact_required_for", None)
        if fields.get("max_canary_percent") == 100:
            fields.pop("max_canary_percent", None)
        if not fields.get("rollback_rules"):
            fields.pop("rollback_rules", None)
        return fields


DEFAULT_POLICY = Policy()  # until a PolicySet on DEFAULT_POLICY_STREAM says otherwise

# Names under this prefix are the registry's own streams, not models. The
# default policy is one: SetPolicy on it changes the policy of every model that
# has none of its own, and the change is an event like any other.
RESERVED_PREFIX = "modelog."
DEFAULT_POLICY_STREAM = "modelog.default-policy"


class PolicyInForce(Frozen):
    """The default policy a decision ran under, and the event that set it."""

    policy: Policy = DEFAULT_POLICY
    seq: int = 0  # 0: the built-in default; else the seq of the PolicySet
