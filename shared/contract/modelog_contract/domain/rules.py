"""Gate rules: each a pure function (state, request, policy, now) -> RuleResult.

The policy says which rules apply; a decision records every result, passed or
not, so the trail shows why a promotion went through or was refused.
"""

from collections.abc import Iterable
from datetime import datetime

from modelog_contract.domain.policy import Policy
from modelog_contract.domain.state import Approval, ModelState, VersionState
from modelog_contract.domain.types import Frozen, Stage
from modelog_contract.domain.words import joined, stage_words


class RuleResult(Frozen):
    rule: str
    passed: bool
    detail: str


class Request(Frozen):
    """A move of one version to a stage, as the gate rules see it."""

    version: VersionState
    to_stage: Stage


def transition_allowed(state: ModelState, request: Request, policy: Policy, now: datetime) -> RuleResult:
    origin, target = request.version.stage, request.to_stage
    if (origin, target) in policy.allowed_transitions:
        return RuleResult(rule="transition_allowed", passed=True, detail=f"{origin} -> {target}")
    return RuleResult(rule="transition_allowed", passed=False,
                      detail=_how_to_reach(state.name, request.version.version, origin, target, policy))


def _how_to_reach(model: str, version: int, origin: Stage, target: Stage, policy: Policy) -> str:
    """Why `origin -> target` is refused, and the step that leads there if one does."""
    where = f"version {version} of {model} is in {stage_words(origin)}"
    if origin == "Archived" and target == "Production" and policy.rollback_allowed:
        return f"{where}; an Archived version returns to Production by a rollback, which an operator makes"
    sources = [a for a, b in policy.allowed_transitions if b == target]
    if not sources:
        return f"{where}; the policy allows no move to {target}"
    reaches = f"a version reaches {target} from {joined(stage_words(s) for s in sources)}"
    path = _path(policy.allowed_transitions, origin, target)
    if path:
        verb = "archive it" if path[0] == "Archived" else f"promote it to {path[0]}"
        return f"{where}; {reaches}: {verb} first"
    onward = [b for a, b in policy.allowed_transitions if a == origin]
    if not onward:
        return f"{where}; {reaches}, and the policy allows no move out of {stage_words(origin)}"
    return f"{where}; {reaches}, which no allowed move leads to from there (it may move to {joined(onward)})"


def _path(allowed: tuple[tuple[Stage, Stage], ...], origin: Stage, target: Stage) -> list[Stage]:
    """The stages after `origin` on a shortest allowed way to `target`; [] if there is none."""
    came_from: dict[Stage, Stage] = {}
    frontier = [origin]
    while frontier and target not in came_from:
        reached = []
        for stage in frontier:
            for before, after in allowed:
                if before == stage and after != origin and after not in came_from:
                    came_from[after] = stage
                    reached.append(after)
        frontier = reached
    if target not in came_from:
        return []
    path = [target]
    while came_from[path[0]] != origin:
        path.insert(0, came_from[path[0]])
    return path


def lineage_present(state: ModelState, request: Request, policy: Policy, now: datetime) -> RuleResult:
    if request.to_stage not in policy.lineage_required_for:
        return RuleResult(rule="lineage_present", passed=True, detail="not required for this stage")
    v = request.version
    missing = [name for name, value in (("run_id", v.run_id), ("dataset_sha256", v.dataset_sha256),
                                        ("model_card", v.model_card)) if not value]
    return RuleResult(rule="lineage_present", passed=not missing,
                      detail=f"missing {', '.join(missing)}: the policy requires them for {request.to_stage}; "
                             "register a version that records them" if missing
                      else "run, dataset and model card recorded")


def metric_thresholds(state: ModelState, request: Request, policy: Policy, now: datetime) -> RuleResult:
    failures = []
    for threshold in policy.metric_thresholds.get(request.to_stage, ()):
        observed = request.version.metrics.get(threshold.metric)
        if observed is None:
            failures.append(f"{threshold.metric} not reported (needs {threshold.op} {threshold.value}): report it first")
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
    if ours is None:
        return RuleResult(rule="beats_champion", passed=False,
                          detail=f"{rule.metric} not reported for v{request.version.version}, so it cannot be "
                                 f"compared with champion v{champion.version}: report it first")
    if theirs is None:
        return RuleResult(rule="beats_champion", passed=False,
                          detail=f"champion v{champion.version} has no {rule.metric} to compare with: "
                                 "report it for the champion first")
    gain = ours - theirs if rule.higher_is_better else theirs - ours
    return RuleResult(rule="beats_champion", passed=gain >= rule.margin,
                      detail=f"{rule.metric} {ours} vs champion v{champion.version} {theirs}: "
                             f"gain {gain:.4g}, margin {rule.margin}"
                             + ("" if gain >= rule.margin else f" (needs a gain of at least {rule.margin})"))


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def outside_freeze_window(state: ModelState, request: Request, policy: Policy, now: datetime) -> RuleResult:
    if request.to_stage != "Production":
        return RuleResult(rule="outside_freeze_window", passed=True, detail="freezes apply to Production")
    frozen = next((w for w in policy.freeze_windows if w.covers(now)), None)
    if frozen is None:
        return RuleResult(rule="outside_freeze_window", passed=True, detail=f"{now.isoformat()} is not frozen")
    return RuleResult(rule="outside_freeze_window", passed=False,
                      detail=f"{now.isoformat()} is in the freeze on {WEEKDAYS[frozen.weekday]}s {frozen.start}-"
                             f"{frozen.end} UTC: frozen until {frozen.end} UTC; request again after that")


def artifact_verified(state: ModelState, request: Request, policy: Policy, now: datetime) -> RuleResult:
    if request.to_stage not in policy.verified_artifact_required_for:
        return RuleResult(rule="artifact_verified", passed=True, detail="not required for this stage")
    artifact = request.version.artifact
    if artifact.verified:
        return RuleResult(rule="artifact_verified", passed=True, detail=f"modelog holds the files (sha256 {artifact.sha256})")
    return RuleResult(rule="artifact_verified", passed=False,
                      detail=f"version {request.version.version} was registered from {artifact.uri!r}, which modelog "
                             f"could not read, so its files are unverified; the policy requires verified files for "
                             f"{request.to_stage}: register a version from a source modelog can copy")


GATES = (transition_allowed, lineage_present, metric_thresholds, beats_champion, outside_freeze_window,
         artifact_verified)


def evaluate_gates(state: ModelState, request: Request, policy: Policy, now: datetime) -> tuple[RuleResult, ...]:
    return tuple(gate(state, request, policy, now) for gate in GATES)


def count_valid_approvals(approvals: Iterable[Approval], policy: Policy, now: datetime) -> int:
    """Approvals still inside the policy's TTL at `now`."""
    return sum(1 for a in approvals if (now - a.at).total_seconds() <= policy.approval_ttl_s)
