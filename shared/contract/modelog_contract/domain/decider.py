"""decide(state, command) -> events and evolve(state, event) -> state.

Pure and deterministic: event ids are uuid5(command_id, i) and time is the
command's issued_at, so deciding the same command again after a crash yields
byte-identical events that every consumer recognises. Every refusal is a
CommandRejected event with a stable reason code.

A command id is decided once: a retry inside the model's idempotency window
yields no events; one the window has forgotten is refused (command_expired),
never decided a second time (idempotency.py).
"""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import NamedTuple
from uuid import UUID, uuid5

from modelog_contract.domain import commands as c
from modelog_contract.domain import events as e
from modelog_contract.domain.chain import link_hash
from modelog_contract.domain.commands import Command
from modelog_contract.domain.events import CommandPosition, Event, EventPayload, StageChangeWhy
from modelog_contract.domain.idempotency import DEFAULT_WINDOW, IdempotencyWindow
from modelog_contract.domain.monitoring import Evidence
from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM, RESERVED_PREFIX, Policy, PolicyInForce
from modelog_contract.domain.reasons import Reason
from modelog_contract.domain.rules import Request, RuleResult, count_valid_approvals, evaluate_gates
from modelog_contract.domain.splits import SERVING_STAGES, TrafficSplit, canaries, normalized, without_version
from modelog_contract.domain.state import (
    SETTLED_REMEMBERED,
    Alias,
    Approval,
    ModelState,
    PendingTransition,
    SettledTransition,
    SettlementOutcome,
    VersionState,
)
from modelog_contract.domain.types import Actor, Stage
from modelog_contract.domain.words import joined, listing, stage_words

UNKNOWN_ACTOR = Actor(subject="unknown")
OPERATOR_ROLE = "operator"
# Who may revise a model card besides the policy's reviewers (its approver_role):
# publishers, who write cards when they register versions.
PUBLISHER_ROLE = "publisher"
IMPORTER_ROLE = "admin"
# Who may say what an instance serves: a serving process's own role, or an
# operator reporting by hand (permissions.py says why a role of its own).
SERVING_REPORTERS = ("server", OPERATOR_ROLE)
# The stages whose versions a move may archive in the same decision: the
# serving stages, as MLflow's archive_existing_versions.
ARCHIVES_THE_OTHERS: tuple[Stage, ...] = ("Staging", "Production")


class Rejection(Exception):
    """Raised inside a handler; decide turns it into a CommandRejected event."""

    def __init__(self, reason: Reason, message: str, rule_results: tuple[RuleResult, ...] = ()) -> None:
        super().__init__(message)
        self.reason, self.message, self.rule_results = reason, message, rule_results


def decide(state: ModelState, command: Command, position: CommandPosition | None = None,
           default: PolicyInForce = PolicyInForce()) -> list[Event]:
    """The events `command` yields on `state`. `default` is the registry-wide
    policy in force, for models without one of their own."""
    if command.command_id in state.decided:
        return []  # already decided: its events are in the log once
    if state.decided.expired(command.command_id, command.issued_at):
        return _expired(state, command.command_id, command.issued_at, command.actor, command.type, position)
    try:
        _check_preconditions(state, command)
        payloads = _handle(state, command, _policy(state, default))
    except Rejection as refused:
        payloads = [e.CommandRejected(command_type=command.type, reason=refused.reason,
                                      message=refused.message, rule_results=refused.rule_results)]
    return _seal(state, command.command_id, command.issued_at, command.actor, payloads, position)


def reject_malformed(state: ModelState, command_id: UUID, at: datetime, detail: str,
                     position: CommandPosition | None = None) -> list[Event]:
    """A record on the model's key that is not a valid command is refused on the record."""
    return _refuse(state, command_id, at, UNKNOWN_ACTOR, "unknown", Reason.MALFORMED_COMMAND, detail, position)


def reject_unauthenticated(state: ModelState, command: Command, detail: str, proven: Actor | None = None,
                           position: CommandPosition | None = None) -> list[Event]:
    """A command whose token does not prove its actor is refused before it is
    decided. The event's actor is who the token proved, if anyone: never the
    actor the command claims."""
    return _refuse(state, command.command_id, command.issued_at, proven or UNKNOWN_ACTOR, command.type,
                   Reason.UNAUTHENTICATED, detail, position)


def _refuse(state: ModelState, command_id: UUID, at: datetime, actor: Actor, command_type: str,
            reason: Reason, detail: str, position: CommandPosition | None) -> list[Event]:
    if command_id in state.decided:
        return []
    if state.decided.expired(command_id, at):
        return _expired(state, command_id, at, actor, command_type, position)
    refusal = e.CommandRejected(command_type=command_type, reason=reason, message=detail[:2000])
    return _seal(state, command_id, at, actor, [refusal], position)


def _expired(state: ModelState, command_id: UUID, at: datetime, actor: Actor, command_type: str,
             position: CommandPosition | None) -> list[Event]:
    """The refusal of a command the window may have forgotten deciding. Its
    event id is not the first decision's (which the log may hold already): it
    is named after the seq it takes, so deciding it again still yields the
    same bytes."""
    horizon = state.decided.horizon
    refusal = e.CommandRejected(
        command_type=command_type, reason=Reason.COMMAND_EXPIRED,
        message=f"command {command_id} was issued at {at.isoformat()}, no later than the newest command whose id "
                f"model {state.name!r} no longer remembers (decided at {horizon.isoformat() if horizon else '?'}): "
                f"it may have been decided already, so it is not decided again. Read the model; if the change "
                f"is still wanted, send it again with a new command id (a new Idempotency-Key)")
    return _seal(state, command_id, at, actor, [refusal], position,
                 ids=lambda index, seq: uuid5(command_id, f"expired at seq {seq}"))


class Policied(NamedTuple):
    """The policy a decision applies, and a rule result saying which one it was."""

    policy: Policy
    source: RuleResult


def _policy(state: ModelState, default: PolicyInForce) -> Policied:
    if state.policy is not None:
        return Policied(state.policy, RuleResult(rule="policy_in_force", passed=True,
                                                 detail="the model's own policy"))
    origin = f"the default policy set at seq {default.seq}" if default.seq else "the built-in default policy"
    return Policied(default.policy, RuleResult(rule="policy_in_force", passed=True, detail=origin))


def _check_preconditions(state: ModelState, command: Command) -> None:
    name = command.model
    if command.expected_seq is not None and command.expected_seq != state.seq:
        raise Rejection(Reason.VERSION_CONFLICT,
                        f"model {name!r} is at seq {state.seq}, not {command.expected_seq} as the command expected: "
                        f"someone changed it first; read it again and, if the change still applies, "
                        f"retry expecting seq {state.seq}")
    if name.startswith(RESERVED_PREFIX):
        if name == DEFAULT_POLICY_STREAM:
            if isinstance(command, c.SetPolicy):
                return  # the default policy's own stream: it holds nothing else
            raise Rejection(Reason.RESERVED_NAME, f"{name!r} holds only the registry's default policy: "
                                                  f"it takes SetPolicy, not {command.type}")
        raise Rejection(Reason.RESERVED_NAME, f"{name!r} starts with {RESERVED_PREFIX!r}, which names the "
                                              "registry's own streams: choose a model name without it")
    if state.deleted:
        creating = isinstance(command, (c.CreateModel, c.RegisterVersion))
        raise Rejection(Reason.MODEL_DELETED, f"model {name!r} was deleted: " + (
            "its name is not used for a new model; choose another name" if creating
            else "it takes no more commands"))
    if not state.exists and not isinstance(command, (c.CreateModel, c.RegisterVersion)):
        raise Rejection(Reason.MODEL_NOT_FOUND,
                        f"no model named {name!r}: create it, or register a version of it, first")


def _handle(state: ModelState, command: Command, policied: Policied) -> list[EventPayload]:
    policy = policied.policy
    match command:
        case c.CreateModel():
            if state.exists:
                raise Rejection(Reason.MODEL_EXISTS,
                                f"model {command.model!r} already exists ({_version_range(state)}): "
                                "register versions of it or update it instead")
            return [e.ModelCreated(description=command.description, tags=command.tags)]
        case c.RegisterVersion():
            created: list[EventPayload] = [] if state.exists else [e.ModelCreated()]
            fields = command.model_dump(exclude={"type", "command_id", "model", "actor",
                                                 "issued_at", "expected_seq"})
            return created + [e.VersionRegistered(version=state.next_version, **fields)]
        case c.UpdateModel():
            return [e.ModelUpdated(description=command.description)]
        case c.UpdateVersion():
            _live_version(state, command.version)
            return [e.VersionUpdated(version=command.version, description=command.description)]
        case c.ReviseModelCard():
            return [_revise_model_card(state, command, policy)]
        case c.SetTag():
            if command.version is not None:
                _live_version(state, command.version)
            return [e.TagSet(version=command.version, key=command.key, value=command.value)]
        case c.DeleteTag():
            tags = state.tags if command.version is None else _live_version(state, command.version).tags
            if command.key not in tags:
                owner = (f"model {state.name!r}" if command.version is None
                         else f"version {command.version} of {state.name!r}")
                raise Rejection(Reason.TAG_NOT_FOUND, f"{owner} has no tag {command.key!r}; "
                                                      + listing("tags", (repr(k) for k in sorted(tags))))
            return [e.TagDeleted(version=command.version, key=command.key)]
        case c.ReportMetrics():
            _live_version(state, command.version)
            return [e.MetricsReported(version=command.version, metrics=command.metrics)]
        case c.RequestTransition():
            return _request_transition(state, command, policied)
        case c.ApproveTransition():
            return _approve(state, command, policied)
        case c.DenyTransition():
            pending = _pending(state, command.request_id)
            _require_role(command.actor, policy.approver_role, "deny a transition")
            return [e.ApprovalDenied(request_id=pending.request_id, version=pending.version,
                                     comment=command.comment)]
        case c.Rollback():
            return _rollback(state, command, policied)
        case c.SetTrafficSplit():
            return [_set_traffic_split(state, command, policied)]
        case c.ReportServing():
            # A fact, never gated: only its shape is checked.
            _require_any_role(command.actor, SERVING_REPORTERS, "report what an instance serves")
            _live_version(state, command.version)
            return [e.ServingReported(instance=command.instance, version=command.version, since=command.since,
                                      host=command.host, target=command.target)]
        case c.SetAlias():
            _live_version(state, command.version)
            current = state.aliases.get(command.alias)
            if current and current.protected:
                _require_role(command.actor, policy.approver_role, f"move the protected alias @{command.alias}")
            if command.protected:
                _require_role(command.actor, policy.approver_role, f"protect the alias @{command.alias}")
            return [e.AliasSet(alias=command.alias, version=command.version,
                               previous_version=current.version if current else None,
                               protected=command.protected)]
        case c.DeleteAlias():
            current = state.aliases.get(command.alias)
            if current is None:
                raise Rejection(Reason.ALIAS_NOT_FOUND, f"model {state.name!r} has no alias @{command.alias}; "
                                                        + listing("aliases", (f"@{a}" for a in sorted(state.aliases))))
            if current.protected:
                _require_role(command.actor, policy.approver_role,
                              f"delete the protected alias @{command.alias}")
            return [e.AliasDeleted(alias=command.alias, version=current.version)]
        case c.SetPolicy():
            return [e.PolicySet(policy=command.policy)]
        case c.DeleteVersion():
            version = _live_version(state, command.version)
            if version.stage == "Production":
                raise Rejection(Reason.VERSION_IN_PRODUCTION,
                                f"version {version.version} of {state.name!r} is in Production: archive it first")
            # Its aliases go with it, in the same decision.
            deleted: list[EventPayload] = [
                e.AliasDeleted(alias=name, version=alias.version)
                for name, alias in sorted(state.aliases.items()) if alias.version == version.version]
            return deleted + [e.VersionDeleted(version=version.version)]
        case c.DeleteModel():
            if live := state.versions_in("Production"):
                raise Rejection(Reason.VERSION_IN_PRODUCTION,
                                f"model {state.name!r} has {_versions_words(live)} in Production: "
                                f"archive {'it' if len(live) == 1 else 'them'} first")
            return [e.ModelDeleted()]
    raise Rejection(Reason.UNKNOWN_COMMAND, f"this promoter has no handler for {command.type}")  # pragma: no cover


def _request_transition(state: ModelState, command: c.RequestTransition,
                        policied: Policied) -> list[EventPayload]:
    version = _live_version(state, command.version)
    policy = policied.policy
    if version.stage == command.to_stage:
        onward = [b for a, b in policy.allowed_transitions if a == version.stage]
        raise Rejection(Reason.STAGE_UNCHANGED,
                        f"version {version.version} of {state.name!r} is already in {stage_words(version.stage)}; "
                        + (f"from there the policy allows a move to {joined(onward)}" if onward
                           else "the policy allows no move out of it"))
    if command.imported_from is not None:
        return _import_stage(state, version, command, policied)
    results = (policied.source,) + evaluate_gates(
        state, Request(version=version, to_stage=command.to_stage), policy, command.issued_at)
    _require_gates_passed(state, results, version.version, command.to_stage)
    needed = policy.approvals_required.get(command.to_stage, 0)
    if needed > 0:
        return [e.TransitionRequested(
            request_id=command.command_id, version=version.version, from_stage=version.stage,
            to_stage=command.to_stage, archive_existing=archives_existing(command),
            approvals_required=needed, rule_results=results, comment=command.comment)]
    return _move(state, version, command.to_stage, archives_existing(command), "promoted", None, results)


def _revise_model_card(state: ModelState, command: c.ReviseModelCard, policy: Policy) -> EventPayload:
    """Its author (a publisher) or a reviewer (the policy's approver role)
    revises a version's card; a revision that changes nothing is refused, so
    each ModelCardRevised in the trail is a change someone made."""
    version = _live_version(state, command.version)
    _require_any_role(command.actor, (PUBLISHER_ROLE, policy.approver_role),
                      f"revise the model card of version {version.version} of {state.name!r}")
    if command.model_card == version.model_card:
        raise Rejection(Reason.CARD_UNCHANGED,
                        f"the model card of version {version.version} of {state.name!r} already reads exactly "
                        f"so ({len(command.model_card)} characters): a revision must change its text")
    return e.ModelCardRevised(version=version.version, model_card=command.model_card, summary=command.summary)


def archives_existing(command: c.RequestTransition) -> bool:
    """Whether the move archives the versions already in its stage; unsaid: on a move to Production only."""
    return command.to_stage == "Production" if command.archive_existing is None else command.archive_existing


def _import_stage(state: ModelState, version: VersionState, command: c.RequestTransition,
                  policied: Policied) -> list[EventPayload]:
    """A stage another registry recorded, reproduced by an admin's import.

    It was decided there, so modelog's gates and approvals do not stand in its
    way; nor is it passed off as a promotion: the StageChanged says "imported",
    names where the stage was recorded, and carries what modelog's gates say of
    the move now, failures included. Only the named version moves: the import
    reproduces each version's stage, it does not archive the others."""
    _require_role(command.actor, IMPORTER_ROLE, "import a stage recorded in another registry")
    judged = (policied.source,) + evaluate_gates(
        state, Request(version=version, to_stage=command.to_stage), policy=policied.policy, now=command.issued_at)
    imported = RuleResult(rule="imported", passed=True,
                          detail=f"{command.to_stage} as recorded in {command.imported_from}: reproduced by an "
                                 "import, not decided by modelog's gates or approvals (their results now are listed)")
    return _move(state, version, command.to_stage, False, "imported", None, judged + (imported,))


def _approve(state: ModelState, command: c.ApproveTransition, policied: Policied) -> list[EventPayload]:
    pending = _pending(state, command.request_id)
    policy = policied.policy
    _require_role(command.actor, policy.approver_role, "approve a transition")
    version = _live_version(state, pending.version)
    approver = command.actor.subject
    others = f"four eyes: another holder of the {policy.approver_role!r} role must approve it"
    if approver == pending.requested_by:
        raise Rejection(Reason.SELF_APPROVAL, f"{approver} requested this transition; {others}")
    if approver == version.registered_by:
        raise Rejection(Reason.SELF_APPROVAL, f"{approver} registered version {version.version}; {others}")
    now = command.issued_at
    still_valid = [a for a in pending.approvals if count_valid_approvals([a], policy, now)]
    if mine := next((a for a in still_valid if a.subject == approver), None):
        raise Rejection(Reason.ALREADY_APPROVED,
                        f"{approver} already approved request {pending.request_id} at {mine.at.isoformat()} "
                        f"({len(still_valid)} of {pending.approvals_required} approvals): "
                        f"another holder of the {policy.approver_role!r} role must approve it")
    granted = e.ApprovalGranted(request_id=pending.request_id, version=version.version,
                                approvals=len(still_valid) + 1,
                                approvals_required=pending.approvals_required, comment=command.comment)
    if granted.approvals < pending.approvals_required:
        return [granted]
    # Enough approvals: the gates are judged again now (metrics, freezes, the
    # champion may have changed since the request).
    results = (policied.source,) + evaluate_gates(
        state, Request(version=version, to_stage=pending.to_stage), policy, now)
    _require_gates_passed(state, results, version.version, pending.to_stage)
    return [granted] + _move(state, version, pending.to_stage, pending.archive_existing, "promoted",
                             pending.request_id, results)


def _rollback(state: ModelState, command: c.Rollback, policied: Policied) -> list[EventPayload]:
    version = _live_version(state, command.version)
    _require_role(command.actor, OPERATOR_ROLE, "roll back")
    if not policied.policy.rollback_allowed:
        raise Rejection(Reason.ROLLBACK_NOT_ALLOWED,
                        f"{policied.source.detail} does not allow rollbacks (rollback_allowed is false): "
                        "promote a version through a transition request instead")
    if version.stage != "Archived":
        raise Rejection(Reason.NOT_ARCHIVED,
                        f"version {version.version} of {state.name!r} is in {stage_words(version.stage)}; "
                        "only an Archived version can be rolled back to; "
                        + listing("Archived versions", map(str, state.versions_in("Archived")), "the model"))
    return _move(state, version, "Production", True, "rollback", None, (), command.evidence)


def _set_traffic_split(state: ModelState, command: c.SetTrafficSplit, policied: Policied) -> e.TrafficSplitSet:
    """Checked in this order, each refusal with its own code: the role, the
    split's shape, its versions' stages, its weights, the policy's canary share."""
    _require_role(command.actor, OPERATOR_ROLE, "set a traffic split")
    routed = [r.version for r in command.routes]
    if len(set(routed)) < len(routed) or len(set(command.shadows)) < len(command.shadows):
        raise Rejection(Reason.INVALID_SPLIT, "a traffic split names each version once: "
                                              f"routes {_numbers(routed)}, shadows {_numbers(command.shadows)}")
    if both := sorted(set(routed) & set(command.shadows)):
        raise Rejection(Reason.INVALID_SPLIT, f"{_versions_words(both)} would be both routed and a shadow: "
                                              "a shadow's answers are never served, so route it or shadow it")
    named = [_live_version(state, n) for n in routed + list(command.shadows)]
    stages = RuleResult(rule="serving_stages", passed=all(v.stage in SERVING_STAGES for v in named),
                        detail="; ".join(f"version {v.version} in {stage_words(v.stage)}" for v in named))
    if not stages.passed:
        elsewhere = [v.version for v in named if v.stage not in SERVING_STAGES]
        raise Rejection(Reason.VERSION_NOT_SERVING,
                        f"{_versions_words(elsewhere)} of {state.name!r} {'is' if len(elsewhere) == 1 else 'are'} "
                        f"not in Staging or Production ({stages.detail}); a split serves only those; "
                        + listing("versions in Staging or Production", map(str, sorted(
                            state.versions_in("Staging") + state.versions_in("Production"))), "the model"),
                        (policied.source, stages))
    weights = [r.weight for r in command.routes]
    summed = RuleResult(rule="weights", passed=min(weights) > 0 and sum(weights) == 100,
                        detail=f"{' + '.join(map(str, weights))} = {sum(weights)}")
    if not summed.passed:
        raise Rejection(Reason.SPLIT_WEIGHTS_INVALID,
                        f"the weights are {summed.detail}: each must be a positive whole percent and together "
                        "they must make 100", (policied.source, stages, summed))
    production = state.production_version()
    split = TrafficSplit(routes=command.routes, shadows=command.shadows,
                         production_version=production.version if production else None)
    most = policied.policy.max_canary_percent
    over = [r for r in canaries(split) if r.weight > most]
    canary = RuleResult(rule="max_canary_percent", passed=not over, detail=(
        f"canaries {', '.join(f'version {r.version} at {r.weight}%' for r in canaries(split)) or 'none'}; "
        f"at most {most}% each (Production: "
        f"{f'version {split.production_version}' if production else 'none'})"))
    results = (policied.source, stages, summed, canary)
    if over:
        raise Rejection(Reason.CANARY_ABOVE_MAXIMUM,
                        f"{canary.detail}: {policied.source.detail} allows a canary at most {most}% of the traffic",
                        results)
    return e.TrafficSplitSet(routes=split.routes, shadows=split.shadows, production_version=split.production_version,
                             rule_results=results, comment=command.comment, evidence=command.evidence)


def _numbers(numbers: Iterable[int]) -> str:
    return ", ".join(map(str, numbers)) or "none"


def _move(state: ModelState, version: VersionState, to_stage: Stage, archive_existing: bool,
          why: StageChangeWhy, request_id: UUID | None, results: tuple[RuleResult, ...],
          evidence: Evidence | None = None) -> list[EventPayload]:
    """The stage change and, with archive_existing, the archiving of the versions
    it replaces in Staging or Production: one decision, so one transaction in the log."""
    moved: list[EventPayload] = [e.StageChanged(version=version.version, from_stage=version.stage, to_stage=to_stage,
                                                why=why, request_id=request_id, rule_results=results,
                                                evidence=evidence)]
    if archive_existing and to_stage in ARCHIVES_THE_OTHERS:
        moved += [e.StageChanged(version=n, from_stage=to_stage, to_stage="Archived",
                                 why="archived-by-promotion", request_id=request_id)
                  for n in state.versions_in(to_stage) if n != version.version]
    return moved


def _require_gates_passed(state: ModelState, results: tuple[RuleResult, ...], version: int, to_stage: Stage) -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        raise Rejection(Reason.GATE_FAILED,
                        f"version {version} of {state.name!r} to {to_stage}: "
                        + "; ".join(f"{r.rule}: {r.detail}" for r in failed),
                        results)


def _live_version(state: ModelState, number: int) -> VersionState:
    version = state.versions.get(number)
    if version is None:
        raise Rejection(Reason.VERSION_NOT_FOUND,
                        f"model {state.name!r} has no version {number}; {_version_range(state)}")
    if version.deleted:
        raise Rejection(Reason.VERSION_DELETED,
                        f"version {number} of {state.name!r} was deleted and can no longer change or move; "
                        + listing("live versions", (str(n) for n, v in sorted(state.versions.items())
                                                    if not v.deleted), "the model"))
    return version


def _version_range(state: ModelState) -> str:
    last = state.last_version
    return {0: "it has no versions yet", 1: "its only version is 1"}.get(last, f"its versions are 1 to {last}")


def _versions_words(numbers: list[int]) -> str:
    return f"version {numbers[0]}" if len(numbers) == 1 else f"versions {joined(map(str, numbers), 'and')}"


def _pending(state: ModelState, request_id: UUID) -> PendingTransition:
    pending = state.pending.get(request_id)
    if pending is not None:
        return pending
    settled = state.settled.get(request_id)
    if settled is None:
        raise Rejection(Reason.REQUEST_NOT_FOUND,
                        f"model {state.name!r} has no pending transition request {request_id}; "
                        + listing("pending requests", (str(r) for r in state.pending)))
    raise Rejection(Reason.REQUEST_NOT_FOUND, _how_it_was_settled(state, request_id, settled))


def _how_it_was_settled(state: ModelState, request_id: UUID, settled: SettledTransition) -> str:
    """Who settled a request and when, for whoever reviews it too late."""
    request = f"request {request_id} (version {settled.version} to {settled.to_stage}) is no longer pending"
    at, by = settled.at.isoformat(), settled.by
    version = state.versions.get(settled.version)
    now = ("has been deleted since" if version is None or version.deleted
           else f"is in {stage_words(version.stage)} now")
    again = "request the transition again if it is still wanted"
    match settled.outcome:
        case "applied":
            approvers = joined(settled.approvers, "and") if settled.approvers else by
            return f"{request}: approved by {approvers} and applied at {at}; version {settled.version} {now}"
        case "denied":
            return f"{request}: {by} denied it at {at}; {again}"
        case "superseded":
            return (f"{request}: {by} moved version {settled.version} by another decision at {at}, which closed "
                    f"it; the version {now}; {again}")
        case "version_deleted":
            return f"{request}: {by} deleted version {settled.version} at {at}, which closed it"


def _require_role(actor: Actor, role: str, what: str) -> None:
    _require_any_role(actor, (role,), what)


def _require_any_role(actor: Actor, roles: tuple[str, ...], what: str) -> None:
    if not set(roles) & set(actor.roles):
        held = f"their roles are {joined(actor.roles, 'and')}" if actor.roles else "they hold no roles"
        needed = joined(dict.fromkeys(map(repr, roles)))  # once each: the policy's role may be one of the others
        raise Rejection(Reason.FORBIDDEN, f"{actor.subject} needs the {needed} role to {what}; {held}")


def _seal(state: ModelState, command_id: UUID, at: datetime, actor: Actor,
          payloads: list[EventPayload], position: CommandPosition | None,
          ids: Callable[[int, int], UUID] | None = None) -> list[Event]:
    """Give each payload its envelope: id, seq and the link to the previous hash.
    `ids(index, seq)` names the events; by default, event_id(command_id, index)."""
    events: list[Event] = []
    prev_hash, seq = state.head_hash, state.seq
    for i, payload in enumerate(payloads):
        seq += 1
        unhashed = Event.model_construct(
            event_id=ids(i, seq) if ids else event_id(command_id, i), type=payload.type, schema_version=1,
            model=state.name, seq=seq, prev_hash=prev_hash, hash="", occurred_at=at, command_id=command_id, actor=actor,
            closes_decision=i == len(payloads) - 1, command_position=position, payload=payload)
        # Validated whole once the hash is known, as every event read from the log is.
        event = Event.model_validate({**dict(unhashed), "hash": link_hash(prev_hash, unhashed.model_dump(mode="json"))})
        events.append(event)
        prev_hash = event.hash
    return events


def event_id(command_id: UUID, index: int) -> UUID:
    return uuid5(command_id, str(index))


def evolve(state: ModelState, event: Event, window: IdempotencyWindow = DEFAULT_WINDOW) -> ModelState:
    """The state after `event`. `window` bounds the command ids remembered:
    whoever decides on the result must fold every event under the same one."""
    changes: dict[str, object] = {"seq": event.seq, "head_hash": event.hash,
                                  "decided": state.decided.remember(event.command_id, event.occurred_at, window)}
    p = event.payload
    match p:
        case e.ModelCreated():
            changes.update(exists=True, description=p.description, tags=p.tags)
        case e.VersionRegistered():
            fields = p.model_dump(exclude={"type", "extra"})
            changes.update(state.with_version(VersionState(registered_by=event.actor.subject, **fields)))
        case e.ModelUpdated():
            changes["description"] = p.description
        case e.VersionUpdated():
            changes.update(_with_version(state, p.version, description=p.description))
        case e.ModelCardRevised():
            changes.update(_with_version(state, p.version, model_card=p.model_card))
        case e.TagSet(version=None):
            changes["tags"] = {**state.tags, p.key: p.value}
        case e.TagSet(version=int() as number):
            tags = {**state.versions[number].tags, p.key: p.value}
            changes.update(_with_version(state, number, tags=tags))
        case e.TagDeleted(version=None):
            changes["tags"] = {k: v for k, v in state.tags.items() if k != p.key}
        case e.TagDeleted(version=int() as number):
            tags = {k: v for k, v in state.versions[number].tags.items() if k != p.key}
            changes.update(_with_version(state, number, tags=tags))
        case e.MetricsReported():
            metrics = {**state.versions[p.version].metrics, **p.metrics}
            changes.update(_with_version(state, p.version, metrics=metrics))
        case e.TransitionRequested():
            changes["pending"] = {**state.pending, p.request_id: PendingTransition(
                request_id=p.request_id, version=p.version, to_stage=p.to_stage,
                archive_existing=p.archive_existing, requested_by=event.actor.subject,
                requested_at=event.occurred_at, approvals_required=p.approvals_required)}
        case e.ApprovalGranted():
            pending = state.pending[p.request_id]
            approvals = pending.approvals + (Approval(subject=event.actor.subject, at=event.occurred_at),)
            changes["pending"] = {**state.pending, p.request_id: pending.model_copy(update={"approvals": approvals})}
        case e.ApprovalDenied():
            changes.update(_settle(state, event, lambda r: r.request_id == p.request_id, lambda r: "denied"))
        case e.TrafficSplitSet():
            changes["traffic_split"] = normalized(TrafficSplit(
                routes=p.routes, shadows=p.shadows, production_version=p.production_version))
        case e.StageChanged():
            changes.update(_with_version(state, p.version, stage=p.to_stage))
            if p.to_stage not in SERVING_STAGES:
                changes["traffic_split"] = without_version(state.traffic_split, p.version)
            # A request is settled once its version moved; so is any other
            # request for that version, which now starts from a different stage.
            changes.update(_settle(state, event, lambda r: r.version == p.version,
                                   lambda r: "applied" if r.request_id == p.request_id else "superseded"))
        case e.AliasSet():
            changes["aliases"] = {**state.aliases, p.alias: Alias(version=p.version, protected=p.protected)}
        case e.AliasDeleted():
            changes["aliases"] = {k: v for k, v in state.aliases.items() if k != p.alias}
        case e.PolicySet():
            changes["policy"] = p.policy
        case e.VersionDeleted():
            changes.update(_with_version(state, p.version, deleted=True))
            changes["traffic_split"] = without_version(state.traffic_split, p.version)
            changes.update(_settle(state, event, lambda r: r.version == p.version, lambda r: "version_deleted"))
        case e.ModelDeleted():
            changes.update(deleted=True, pending={}, aliases={}, traffic_split=None)
        case e.ServingReported() | e.CommandRejected():
            pass  # no decision reads them: the state stays small
    return state.model_copy(update=changes)


def _with_version(state: ModelState, number: int, **update: object) -> dict[str, object]:
    return state.with_version(state.versions[number].model_copy(update=update))


def _settle(state: ModelState, event: Event, closes: Callable[[PendingTransition], bool],
            outcome: Callable[[PendingTransition], SettlementOutcome]) -> dict[str, object]:
    """Close the pending requests `closes` picks, remembering how each ended."""
    closed = {r.request_id: SettledTransition(version=r.version, to_stage=r.to_stage, outcome=outcome(r),
                                              by=event.actor.subject, at=event.occurred_at,
                                              approvers=tuple(a.subject for a in r.approvals))
              for r in state.pending.values() if closes(r)}
    if not closed:
        return {}
    remembered = list({**state.settled, **closed}.items())[-SETTLED_REMEMBERED:]
    return {"pending": {rid: r for rid, r in state.pending.items() if rid not in closed},
            "settled": dict(remembered)}


def fold(name: str, events: Iterable[Event], window: IdempotencyWindow = DEFAULT_WINDOW) -> ModelState:
    state = ModelState(name=name)
    for event in events:
        state = evolve(state, event, window)
    return state
