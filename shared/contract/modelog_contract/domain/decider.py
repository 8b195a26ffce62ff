"""decide(state, command) -> events and evolve(state, event) -> state.

Pure and deterministic: event ids are uuid5(command_id, i) and time is the
command's issued_at, so deciding the same command again after a crash yields
byte-identical events that every consumer recognises. Every refusal is a
CommandRejected event with a stable reason code.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple
from uuid import UUID, uuid5

from modelog_contract.domain import commands as c
from modelog_contract.domain import events as e
from modelog_contract.domain.chain import link_hash
from modelog_contract.domain.commands import Command
from modelog_contract.domain.events import CommandPosition, Event, EventPayload
from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM, RESERVED_PREFIX, Policy, PolicyInForce
from modelog_contract.domain.rules import Request, RuleResult, count_valid_approvals, evaluate_gates
from modelog_contract.domain.state import Alias, Approval, ModelState, PendingTransition, VersionState
from modelog_contract.domain.types import Actor

UNKNOWN_ACTOR = Actor(subject="unknown")
OPERATOR_ROLE = "operator"


class Rejection(Exception):
    """Raised inside a handler; decide turns it into a CommandRejected event."""

    def __init__(self, reason: str, message: str, rule_results: tuple = ()):
        super().__init__(message)
        self.reason, self.message, self.rule_results = reason, message, rule_results


def decide(state: ModelState, command: Command, position: CommandPosition | None = None,
           default: PolicyInForce = PolicyInForce()) -> list[Event]:
    """The events `command` yields on `state`. `default` is the registry-wide
    policy in force, for models without one of their own."""
    if command.command_id in state.decided:
        return []  # already decided: its events are in the log once
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
    return _refuse(state, command_id, at, UNKNOWN_ACTOR, "unknown", "malformed_command", detail, position)


def reject_unauthenticated(state: ModelState, command: Command, detail: str, proven: Actor | None = None,
                           position: CommandPosition | None = None) -> list[Event]:
    """A command whose token does not prove its actor is refused before it is
    decided. The event's actor is who the token proved, if anyone: never the
    actor the command claims."""
    return _refuse(state, command.command_id, command.issued_at, proven or UNKNOWN_ACTOR, command.type,
                   "unauthenticated", detail, position)


def _refuse(state: ModelState, command_id: UUID, at: datetime, actor: Actor, command_type: str,
            reason: str, detail: str, position: CommandPosition | None) -> list[Event]:
    if command_id in state.decided:
        return []
    refusal = e.CommandRejected(command_type=command_type, reason=reason, message=detail[:2000])
    return _seal(state, command_id, at, actor, [refusal], position)


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
    if command.expected_seq is not None and command.expected_seq != state.seq:
        raise Rejection("version_conflict",
                        f"model {command.model!r} is at seq {state.seq}, not {command.expected_seq}")
    if command.model.startswith(RESERVED_PREFIX):
        if command.model == DEFAULT_POLICY_STREAM and isinstance(command, c.SetPolicy):
            return  # the default policy's own stream: it holds nothing else
        raise Rejection("reserved_name", f"names starting {RESERVED_PREFIX!r} are the registry's own")
    if state.deleted:
        raise Rejection("model_deleted", f"model {command.model!r} was deleted")
    if not state.exists and not isinstance(command, (c.CreateModel, c.RegisterVersion)):
        raise Rejection("model_not_found", f"no model named {command.model!r}")


def _handle(state: ModelState, command: Command, policied: Policied) -> list[EventPayload]:
    policy = policied.policy
    match command:
        case c.CreateModel():
            if state.exists:
                raise Rejection("model_exists", f"model {command.model!r} already exists")
            return [e.ModelCreated(description=command.description, tags=command.tags)]
        case c.RegisterVersion():
            created = [] if state.exists else [e.ModelCreated()]
            fields = command.model_dump(exclude={"type", "command_id", "model", "actor",
                                                 "issued_at", "expected_seq"})
            return created + [e.VersionRegistered(version=state.next_version, **fields)]
        case c.UpdateModel():
            return [e.ModelUpdated(description=command.description)]
        case c.UpdateVersion():
            _live_version(state, command.version)
            return [e.VersionUpdated(version=command.version, description=command.description)]
        case c.SetTag():
            if command.version is not None:
                _live_version(state, command.version)
            return [e.TagSet(version=command.version, key=command.key, value=command.value)]
        case c.DeleteTag():
            tags = state.tags if command.version is None else _live_version(state, command.version).tags
            if command.key not in tags:
                raise Rejection("tag_not_found", f"no tag {command.key!r}")
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
            return _rollback(state, command, policy)
        case c.SetAlias():
            _live_version(state, command.version)
            current = state.aliases.get(command.alias)
            if command.protected or (current and current.protected):
                _require_role(command.actor, policy.approver_role,
                              f"move the protected alias @{command.alias}")
            return [e.AliasSet(alias=command.alias, version=command.version,
                               previous_version=current.version if current else None,
                               protected=command.protected)]
        case c.DeleteAlias():
            current = state.aliases.get(command.alias)
            if current is None:
                raise Rejection("alias_not_found", f"no alias @{command.alias}")
            if current.protected:
                _require_role(command.actor, policy.approver_role,
                              f"delete the protected alias @{command.alias}")
            return [e.AliasDeleted(alias=command.alias, version=current.version)]
        case c.SetPolicy():
            return [e.PolicySet(policy=command.policy)]
        case c.DeleteVersion():
            version = _live_version(state, command.version)
            if version.stage == "Production":
                raise Rejection("version_in_production",
                                f"version {version.version} is in Production: archive it first")
            # Its aliases go with it, in the same decision.
            return [e.AliasDeleted(alias=name, version=alias.version)
                    for name, alias in sorted(state.aliases.items()) if alias.version == version.version
                    ] + [e.VersionDeleted(version=version.version)]
        case c.DeleteModel():
            if state.versions_in("Production"):
                raise Rejection("version_in_production",
                                f"versions {state.versions_in('Production')} are in Production")
            return [e.ModelDeleted()]
    raise Rejection("unknown_command", f"no handler for {command.type}")  # pragma: no cover


def _request_transition(state: ModelState, command: c.RequestTransition,
                        policied: Policied) -> list[EventPayload]:
    version = _live_version(state, command.version)
    if version.stage == command.to_stage:
        raise Rejection("stage_unchanged", f"version {version.version} is already in {version.stage}")
    policy = policied.policy
    results = (policied.source,) + evaluate_gates(
        state, Request(version=version, to_stage=command.to_stage), policy, command.issued_at)
    _require_gates_passed(results, version.version, command.to_stage)
    needed = policy.approvals_required.get(command.to_stage, 0)
    if needed > 0:
        return [e.TransitionRequested(
            request_id=command.command_id, version=version.version, from_stage=version.stage,
            to_stage=command.to_stage, archive_existing=command.archive_existing,
            approvals_required=needed, rule_results=results, comment=command.comment)]
    return _move(state, version, command.to_stage, command.archive_existing, "promoted", None, results)


def _approve(state: ModelState, command: c.ApproveTransition, policied: Policied) -> list[EventPayload]:
    pending = _pending(state, command.request_id)
    policy = policied.policy
    _require_role(command.actor, policy.approver_role, "approve a transition")
    version = _live_version(state, pending.version)
    approver = command.actor.subject
    if approver in (pending.requested_by, version.registered_by):
        raise Rejection("self_approval",
                        f"{approver} requested or registered version {version.version}; "
                        "four-eyes: someone else must approve")
    now = command.issued_at
    still_valid = [a for a in pending.approvals if count_valid_approvals([a], policy, now)]
    if any(a.subject == approver for a in still_valid):
        raise Rejection("already_approved", f"{approver} already approved this request")
    granted = e.ApprovalGranted(request_id=pending.request_id, version=version.version,
                                approvals=len(still_valid) + 1,
                                approvals_required=pending.approvals_required, comment=command.comment)
    if granted.approvals < pending.approvals_required:
        return [granted]
    # Enough approvals: the gates are judged again now (metrics, freezes, the
    # champion may have changed since the request).
    results = (policied.source,) + evaluate_gates(
        state, Request(version=version, to_stage=pending.to_stage), policy, now)
    _require_gates_passed(results, version.version, pending.to_stage)
    return [granted] + _move(state, version, pending.to_stage, pending.archive_existing, "promoted",
                             pending.request_id, results)


def _rollback(state: ModelState, command: c.Rollback, policy: Policy) -> list[EventPayload]:
    version = _live_version(state, command.version)
    _require_role(command.actor, OPERATOR_ROLE, "roll back")
    if not policy.rollback_allowed:
        raise Rejection("rollback_not_allowed", "this model's policy does not allow rollbacks")
    if version.stage != "Archived":
        raise Rejection("not_archived", f"version {version.version} is {version.stage}; "
                                        "only an Archived version can be rolled back to")
    return _move(state, version, "Production", True, "rollback", None, ())


def _move(state: ModelState, version: VersionState, to_stage: str, archive_existing: bool,
          why: str, request_id: UUID | None, results: tuple) -> list[EventPayload]:
    """The stage change and, for Production with archive_existing, the archiving of
    the versions it replaces: one decision, so one transaction in the log."""
    moved = [e.StageChanged(version=version.version, from_stage=version.stage, to_stage=to_stage,
                            why=why, request_id=request_id, rule_results=results)]
    if to_stage == "Production" and archive_existing:
        moved += [e.StageChanged(version=n, from_stage="Production", to_stage="Archived",
                                 why="archived-by-promotion", request_id=request_id)
                  for n in state.versions_in("Production") if n != version.version]
    return moved


def _require_gates_passed(results: tuple, version: int, to_stage: str) -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        raise Rejection("gate_failed",
                        f"version {version} to {to_stage}: " + "; ".join(f"{r.rule}: {r.detail}" for r in failed),
                        results)


def _live_version(state: ModelState, number: int) -> VersionState:
    version = state.versions.get(number)
    if version is None:
        raise Rejection("version_not_found", f"model {state.name!r} has no version {number}")
    if version.deleted:
        raise Rejection("version_deleted", f"version {number} of {state.name!r} was deleted")
    return version


def _pending(state: ModelState, request_id: UUID) -> PendingTransition:
    pending = state.pending.get(request_id)
    if pending is None:
        raise Rejection("request_not_found", f"no pending transition request {request_id}")
    return pending


def _require_role(actor: Actor, role: str, what: str) -> None:
    if role not in actor.roles:
        raise Rejection("forbidden", f"{actor.subject} needs the {role!r} role to {what}")


def _seal(state: ModelState, command_id: UUID, at: datetime, actor: Actor,
          payloads: list[EventPayload], position: CommandPosition | None) -> list[Event]:
    """Give each payload its envelope: id, seq and the link to the previous hash."""
    events: list[Event] = []
    prev_hash, seq = state.head_hash, state.seq
    for i, payload in enumerate(payloads):
        seq += 1
        fields = {
            "event_id": event_id(command_id, i), "type": payload.type, "schema_version": 1,
            "model": state.name, "seq": seq, "prev_hash": prev_hash, "occurred_at": at,
            "command_id": command_id, "actor": actor, "closes_decision": i == len(payloads) - 1,
            "command_position": position, "payload": payload,
        }
        unhashed = Event.model_construct(**fields, hash="").model_dump(mode="json")
        event = Event(**fields, hash=link_hash(prev_hash, unhashed))
        events.append(event)
        prev_hash = event.hash
    return events


def event_id(command_id: UUID, index: int) -> UUID:
    return uuid5(command_id, str(index))


def evolve(state: ModelState, event: Event) -> ModelState:
    changes: dict = {"seq": event.seq, "head_hash": event.hash,
                     "decided": state.decided | {event.command_id}}
    p = event.payload
    match p:
        case e.ModelCreated():
            changes.update(exists=True, description=p.description, tags=p.tags)
        case e.VersionRegistered():
            fields = p.model_dump(exclude={"type", "extra"})
            changes["versions"] = {**state.versions, p.version: VersionState(
                registered_by=event.actor.subject, **fields)}
        case e.ModelUpdated():
            changes["description"] = p.description
        case e.VersionUpdated():
            changes["versions"] = _with_version(state, p.version, description=p.description)
        case e.TagSet(version=None):
            changes["tags"] = {**state.tags, p.key: p.value}
        case e.TagSet():
            tags = {**state.versions[p.version].tags, p.key: p.value}
            changes["versions"] = _with_version(state, p.version, tags=tags)
        case e.TagDeleted(version=None):
            changes["tags"] = {k: v for k, v in state.tags.items() if k != p.key}
        case e.TagDeleted():
            tags = {k: v for k, v in state.versions[p.version].tags.items() if k != p.key}
            changes["versions"] = _with_version(state, p.version, tags=tags)
        case e.MetricsReported():
            metrics = {**state.versions[p.version].metrics, **p.metrics}
            changes["versions"] = _with_version(state, p.version, metrics=metrics)
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
            changes["pending"] = _without_pending(state, lambda r: r.request_id == p.request_id)
        case e.StageChanged():
            changes["versions"] = _with_version(state, p.version, stage=p.to_stage)
            # A request is settled once its version moved; so is any other
            # request for that version, which now starts from a different stage.
            changes["pending"] = _without_pending(state, lambda r: r.version == p.version)
        case e.AliasSet():
            changes["aliases"] = {**state.aliases, p.alias: Alias(version=p.version, protected=p.protected)}
        case e.AliasDeleted():
            changes["aliases"] = {k: v for k, v in state.aliases.items() if k != p.alias}
        case e.PolicySet():
            changes["policy"] = p.policy
        case e.VersionDeleted():
            changes["versions"] = _with_version(state, p.version, deleted=True)
            changes["pending"] = _without_pending(state, lambda r: r.version == p.version)
        case e.ModelDeleted():
            changes.update(deleted=True, pending={}, aliases={})
        case e.CommandRejected():
            pass
    return state.model_copy(update=changes)


def _with_version(state: ModelState, number: int, **update) -> dict[int, VersionState]:
    return {**state.versions, number: state.versions[number].model_copy(update=update)}


def _without_pending(state: ModelState, settled) -> dict[UUID, PendingTransition]:
    return {rid: r for rid, r in state.pending.items() if not settled(r)}


def fold(name: str, events: Iterable[Event]) -> ModelState:
    state = ModelState(name=name)
    for event in events:
        state = evolve(state, event)
    return state
