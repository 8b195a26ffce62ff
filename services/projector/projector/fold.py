"""How each event changes the read models: the one definition, `ReadModelRows.apply`.

Both projections run it. A rebuild folds the whole log into rows in memory,
then copies them in at once. The live projector (read_models.py) loads the
rows a batch of events may change (their SCOPE), folds the events into them
and writes back what changed, in the batch's transaction.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any
from uuid import UUID

import asyncpg

from modelog_contract.domain import events as e
from modelog_contract.domain.events import Event
from modelog_contract.domain.splits import SERVING_STAGES, TrafficSplit, normalized, without_version

Row = dict[str, Any]

# Each table's columns in the order of the migrations; jsonb ones are dumped on the way out.
COLUMNS = {
    "models": ("name", "seq", "head_hash", "description", "tags", "created_at", "updated_at", "deleted",
               "traffic_split"),
    "model_versions": ("model", "version", "stage", "artifact_uri", "artifact_sha256", "artifact_size",
                       "run_id", "description", "params", "metrics", "tags", "registered_by",
                       "registered_at", "deleted", "dataset_uri", "dataset_sha256", "model_card", "artifact_form"),
    "aliases": ("model", "alias", "version", "protected"),
    "pending_transitions": ("request_id", "model", "version", "to_stage", "archive_existing",
                            "requested_by", "requested_at", "approvals_required", "approvals"),
    "stage_history": ("model", "seq", "version", "from_stage", "to_stage", "why", "actor", "changed_at"),
    "command_outcomes": ("command_id", "model", "accepted", "complete", "last_seq", "reason", "message",
                         "version", "decided_at", "events", "rule_results"),
    "serving_reports": ("model", "instance", "version", "since", "host", "target", "reported_by", "reported_at",
                        "seq"),
}
KEYS = {  # each table's primary key, as the migrations make it
    "models": ("name",), "model_versions": ("model", "version"), "aliases": ("model", "alias"),
    "pending_transitions": ("request_id",), "stage_history": ("model", "seq"),
    "command_outcomes": ("command_id",), "serving_reports": ("model", "instance"),
}
JSONB = {"tags", "params", "metrics", "approvals", "rule_results", "traffic_split"}


def payload_version(event: Event) -> int | None:
    """The payload's version, if its type has one (vars: for a missing field,
    pydantic's getattr raises and catches, a cost of its own on every event)."""
    return vars(event.payload).get("version")


# The rows a batch of events may read or change, per table: their models'
# rows, the versions their payloads name, their commands' outcomes ($1 the
# model names, $2 and $3 the (model, version) pairs, $4 the command ids, $5
# and $6 the (model, instance) pairs serving reports name: scope_of). Stage
# history is only appended to. The live projector loads just these: a change
# `apply` made outside them would reach the rebuild only.
SCOPE = {
    "models": "name = ANY($1::text[])",
    "model_versions": "(model, version) IN (SELECT * FROM unnest($2::text[], $3::integer[]))",
    "aliases": "model = ANY($1::text[])",
    "pending_transitions": "model = ANY($1::text[])",
    "command_outcomes": "command_id = ANY($4::uuid[])",
    "serving_reports": "(model, instance) IN (SELECT * FROM unnest($5::text[], $6::text[]))",
}


def scope_of(events: Iterable[Event]) -> tuple[list[str], list[str], list[int], list[UUID], list[str], list[str]]:
    """The SCOPE parameters of a batch: every event's model, version and
    command, and every serving report's instance, once each."""
    models: dict[str, None] = {}
    versions: dict[tuple[str, int], None] = {}
    commands: dict[UUID, None] = {}
    instances: dict[tuple[str, str], None] = {}
    for event in events:
        models[event.model] = None
        if (version := payload_version(event)) is not None:
            versions[event.model, version] = None
        commands[event.command_id] = None
        if isinstance(event.payload, e.ServingReported):
            instances[event.model, event.payload.instance] = None
    return (list(models), [m for m, _ in versions], [v for _, v in versions], list(commands),
            [m for m, _ in instances], [i for _, i in instances])


@dataclass
class ReadModelRows:
    """Every read-model row, keyed as its table is. Aliases and pending
    transitions are grouped by model, as a model's deletion and a stage change
    remove them by model (a request id belongs to the model whose events name it)."""

    models: dict[str, Row] = field(default_factory=dict)
    model_versions: dict[tuple[str, int], Row] = field(default_factory=dict)
    aliases: dict[str, dict[str, Row]] = field(default_factory=dict)
    pending_transitions: dict[str, dict[UUID, Row]] = field(default_factory=dict)
    stage_history: list[Row] = field(default_factory=list)
    command_outcomes: dict[UUID, Row] = field(default_factory=dict)
    # The latest report per (model, instance): what is live where. Kept when
    # the model is deleted (a fact of the world); the queries leave those out.
    serving_reports: dict[tuple[str, str], Row] = field(default_factory=dict)

    def apply(self, event: Event) -> None:
        version = payload_version(event)
        self._apply_payload(event, event.payload, version)
        # Every event moves the model's head, rejections included (they are in its chain).
        if (model := self.models.get(event.model)) is not None:
            model["seq"], model["head_hash"], model["updated_at"] = event.seq, event.hash, event.occurred_at
        self._record_outcome(event, version)

    def _apply_payload(self, event: Event, p, version: int | None) -> None:
        model = event.model
        row = self.models.get(model) if version is None else self.model_versions.get((model, version))
        if row is None:  # as an UPDATE that matches no row: the change goes nowhere
            row = {"tags": {}, "metrics": {}}
        match p:
            case e.ModelCreated():
                self.models[model] = dict(
                    name=model, seq=event.seq, head_hash=event.hash, description=p.description,
                    tags=dict(p.tags), created_at=event.occurred_at, updated_at=event.occurred_at,
                    deleted=False, traffic_split={})
            case e.VersionRegistered():
                self.model_versions[model, p.version] = dict(
                    model=model, version=p.version, stage="None", artifact_uri=p.artifact.uri,
                    artifact_sha256=p.artifact.sha256, artifact_size=p.artifact.size, run_id=p.run_id,
                    description=p.description, params=dict(p.params), metrics=dict(p.metrics),
                    tags=dict(p.tags), registered_by=event.actor.subject, registered_at=event.occurred_at,
                    deleted=False, dataset_uri=p.dataset_uri, dataset_sha256=p.dataset_sha256,
                    model_card=p.model_card, artifact_form=p.artifact.form or "file")
            case e.ModelUpdated() | e.VersionUpdated():
                row["description"] = p.description
            case e.ModelCardRevised():
                row["model_card"] = p.model_card
            case e.TagSet():
                row["tags"][p.key] = p.value
            case e.TagDeleted():
                row["tags"].pop(p.key, None)
            case e.MetricsReported():
                row["metrics"].update(p.metrics)
            case e.TransitionRequested():
                self.pending_transitions.setdefault(model, {})[p.request_id] = dict(
                    request_id=p.request_id, model=model, version=version, to_stage=p.to_stage,
                    archive_existing=p.archive_existing, requested_by=event.actor.subject,
                    requested_at=event.occurred_at, approvals_required=p.approvals_required, approvals=[])
            case e.ApprovalGranted():
                if (pending := self.pending_transitions.get(model, {}).get(p.request_id)) is not None:
                    pending["approvals"].append({"subject": event.actor.subject,
                                                 "at": event.occurred_at.isoformat()})
            case e.ApprovalDenied():
                self.pending_transitions.get(model, {}).pop(p.request_id, None)
            case e.TrafficSplitSet():
                row["traffic_split"] = split_row(normalized(TrafficSplit(
                    routes=p.routes, shadows=p.shadows, production_version=p.production_version)))
            case e.StageChanged():
                row["stage"] = p.to_stage
                if p.to_stage not in SERVING_STAGES:
                    self._version_left(model, p.version)
                self._drop_pending(model, p.version)
                self.stage_history.append(dict(
                    model=model, seq=event.seq, version=version, from_stage=p.from_stage,
                    to_stage=p.to_stage, why=p.why, actor=event.actor.subject, changed_at=event.occurred_at))
            case e.AliasSet():
                self.aliases.setdefault(model, {})[p.alias] = dict(
                    model=model, alias=p.alias, version=version, protected=p.protected)
            case e.AliasDeleted():
                self.aliases.get(model, {}).pop(p.alias, None)
            case e.VersionDeleted():
                row["deleted"] = True
                self._drop_pending(model, p.version)
                self._version_left(model, p.version)
            case e.ModelDeleted():
                row["deleted"], row["traffic_split"] = True, {}
                self.aliases.pop(model, None)
                self.pending_transitions.pop(model, None)
            case e.ServingReported():
                self.serving_reports[model, p.instance] = dict(
                    model=model, instance=p.instance, version=p.version, since=p.since, host=p.host,
                    target=p.target, reported_by=event.actor.subject, reported_at=event.occurred_at, seq=event.seq)
            case e.PolicySet() | e.CommandRejected():
                pass  # the audit trail keeps these; no serving read model needs them yet

    def _version_left(self, model: str, version: int) -> None:
        """The split as the decider's evolve keeps it once `version` serves no more."""
        if (row := self.models.get(model)) is not None and row["traffic_split"]:
            row["traffic_split"] = split_row(without_version(TrafficSplit.model_validate(row["traffic_split"]),
                                                             version))

    def _drop_pending(self, model: str, version: int) -> None:
        pending = self.pending_transitions.get(model, {})
        for request_id in [r for r, row in pending.items() if row["version"] == version]:
            del pending[request_id]

    def _record_outcome(self, event: Event, version: int | None) -> None:
        p = event.payload
        if (outcome := self.command_outcomes.get(event.command_id)) is not None:
            if outcome["complete"]:
                # The first outcome stands. A later decision of the same id is a
                # retry the model had forgotten (command_expired): the trail keeps it.
                return
            outcome["complete"], outcome["last_seq"] = event.closes_decision, event.seq
            if outcome["version"] is None:
                outcome["version"] = version
            outcome["events"].append(p.type)
            return
        rejected = p if isinstance(p, e.CommandRejected) else None
        self.command_outcomes[event.command_id] = dict(
            command_id=event.command_id, model=event.model, accepted=rejected is None,
            complete=event.closes_decision, last_seq=event.seq, reason=rejected and rejected.reason,
            message=rejected and rejected.message, version=version,
            decided_at=event.occurred_at, events=[p.type],
            rule_results=[r.model_dump() for r in rejected.rule_results] if rejected else [])

    def add(self, table: str, row: Row) -> None:
        """Put a row read from `table` where `apply` looks for it."""
        match table:
            case "models":
                self.models[row["name"]] = row
            case "model_versions":
                self.model_versions[row["model"], row["version"]] = row
            case "aliases":
                self.aliases.setdefault(row["model"], {})[row["alias"]] = row
            case "pending_transitions":
                self.pending_transitions.setdefault(row["model"], {})[row["request_id"]] = row
            case "stage_history":
                self.stage_history.append(row)
            case "command_outcomes":
                self.command_outcomes[row["command_id"]] = row
            case "serving_reports":
                self.serving_reports[row["model"], row["instance"]] = row

    def keyed(self) -> dict[str, dict[tuple, Row]]:
        """Every row by table and primary key."""
        return {table: {tuple(row[column] for column in KEYS[table]): row for row in rows}
                for table, rows in self.tables().items()}

    def tables(self) -> dict[str, Iterable[Row]]:
        return {
            "models": self.models.values(),
            "model_versions": self.model_versions.values(),
            "aliases": (row for rows in self.aliases.values() for row in rows.values()),
            "pending_transitions": (row for rows in self.pending_transitions.values() for row in rows.values()),
            "stage_history": self.stage_history,
            "command_outcomes": self.command_outcomes.values(),
            "serving_reports": self.serving_reports.values(),
        }

    async def copy_to(self, conn: asyncpg.Connection) -> None:
        """COPY every row into the read-model tables on `conn`'s search_path, in one transaction."""
        async with conn.transaction():
            for table, rows in self.tables().items():  # models first: versions reference them
                columns = COLUMNS[table]
                await conn.copy_records_to_table(table, records=records(rows, columns), columns=columns)


def split_row(split: TrafficSplit | None) -> dict:
    return {} if split is None else split.model_dump(mode="json")


def records(rows: Iterable[Row], columns: tuple[str, ...]) -> list[Sequence]:
    """The rows' values in `columns` order, jsonb ones dumped (an empty one is
    most of them: rejections have no rule results, most objects no tags)."""
    values_of = itemgetter(*columns)
    dumped = [i for i, column in enumerate(columns) if column in JSONB]
    if not dumped:
        return [values_of(row) for row in rows]
    out: list[Sequence] = []
    for row in rows:
        values = list(values_of(row))
        for i in dumped:
            value = values[i]
            values[i] = json.dumps(value) if value else "[]" if isinstance(value, list) else "{}"
        out.append(values)
    return out


def fold(events: Iterable[Event]) -> ReadModelRows:
    rows = ReadModelRows()
    for event in events:
        rows.apply(event)
    return rows
