"""Gate rules: each a pure function (state, request, policy, now) -> RuleResult.

The policy says which rules apply; a decision records every result, passed or
not, so the trail shows why a promotion went through or was refused.
"""

from datetime import datetime

from modelog_contract.domain.policy import Policy
from modelog_contract.domain.state import ModelState, VersionState
from modelog_contract.domain.types import Frozen, Stage


class RuleResult(Frozen):
    rule: str
    passed: bool
    detail: str


class Request(Frozen):
    """A move of one version to a stage, as the gate rules see it."""

    version: VersionState
    to_stage: Stage


def transition_allowed(state: ModelState, request: Request, policy: Policy, now: datetime) -> RuleResult:
    move = (request.version.stage, request.to_stage)
    return RuleResult(rule="transition_allowed", passed=move in policy.allowed_transitions,
                      detail=f"{move[0]} -> {move[1]}")


def lineage_present(state: ModelState, request: Request, policy: Policy, now: datetime) -> RuleResult:
    if request.to_stage not in policy.lineage_required_for:
        return RuleResult(rule="lineage_present", passed=True, detail="not required for this stage")
    v = request.version
    missing = [name for name, value in (("run_id", v.run_id), ("dataset_sha256", v.dataset_sha256),
                                        ("model_card", v.model_card)) if not value]
    return RuleResult(rule="lineage_present", passed=not missing,
                      detail=f"missing {', '.join(missing)}" if missing else "run, dataset and model card recorded")


def metric_thresholds(state: ModelState, request: Request, policy: Policy, now: datetime) -> RuleResult:
    failures = []
    for threshold in policy.metric_thresholds.get(request.to_stage, ()):
        observed = request.version.metrics.get(threshold.metric)
        if observed is None:
            failures.append(f"{threshold.metric} not reported")
        elif not threshold.holds(observed):
            failures.append(f"{threshold.metric}={observed} fails {threshold.op} {threshold.value}")
    checked = len(policy.metric_thresholds.get(request.to_stage, ()))
    return RuleResult(rule="metric_thresholds", passed=not failures,
                      detail="; ".join(failures) or f"{checked} threshold(s) met")


def beats_champion(state: ModelState, request: Request, policy: Policy, now: datetime) -> RuleResult:
    rule = policy.champion
    if rule is None or request.to_stage != "Production":
        return RuleResult(rule="beats_champion", passed=True, detail="no champion rule for this stage")
    champion = state.production_version()
    if champion is None or champion.version == request.version.version:
        return RuleResult(rule="beats_champion", passed=True, detail="no current Production version")
    ours, theirs = request.version.metrics.get(rule.metric), champion.metrics.get(rule.metric)
    if ours is None or theirs is None:
        return RuleResult(rule="beats_champion", passed=False,
                          detail=f"{rule.metric} missing on v{request.version.version} or champion v{champion.version}")
    gain = ours - theirs if rule.higher_is_better else theirs - ours
    return RuleResult(rule="beats_champion", passed=gain >= rule.margin,
                      detail=f"{rule.metric} {ours} vs champion v{champion.version} {theirs}: "
                             f"gain {gain:.4g}, margin {rule.margin}")


def outside_freeze_window(state: ModelState, request: Request, policy: Policy, now: datetime) -> RuleResult:
    if request.to_stage != "Production":
        return RuleResult(rule="outside_freeze_window", passed=True, detail="freezes apply to Production")
    frozen = [w for w in policy.freeze_windows if w.covers(now)]
    return RuleResult(rule="outside_freeze_window", passed=not frozen,
                      detail=f"frozen until {frozen[0].end} UTC" if frozen else f"{now.isoformat()} is not frozen")


GATES = (transition_allowed, lineage_present, metric_thresholds, beats_champion, outside_freeze_window)


def evaluate_gates(state: ModelState, request: Request, policy: Policy, now: datetime) -> tuple[RuleResult, ...]:
    return tuple(gate(state, request, policy, now) for gate in GATES)


def count_valid_approvals(approvals, policy: Policy, now: datetime) -> int:
    """Approvals still inside the policy's TTL at `now`."""
    return sum(1 for a in approvals if (now - a.at).total_seconds() <= policy.approval_ttl_s)
