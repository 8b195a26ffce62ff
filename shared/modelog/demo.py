"""The scripted scenario behind `make demo`: what modelog does, step by step.

It grows with every capability that lands. Today: train a real model, register
two versions of `fraud-detector`, read them back from the serving side, walk
them through the promotion workflow (Staging, a second person's approval,
Production with the previous version archived, a refused self-approval, a
rollback), and show the audit trail the log keeps, verified end to end.
"""

import asyncio
import hashlib
import json
import pickle
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import httpx
from rich.console import Console
from rich.table import Table

from modelog.adapters.commands import CommandPublisher
from modelog.client import Client
from modelog.identity.dev import dev_token
from modelog.domain import commands as c
from modelog.domain.types import Actor
from modelog.identity.dev import signed
from modelog.settings import EngineEndpoints, ServicePorts

console = Console(width=110)
MODEL = "fraud-detector"
# The people of the scenario. Alice trains models and may approve other
# people's work; Bob reviews; Olga is on call and may roll back.
ALICE = Actor(subject="alice", roles=("publisher", "approver"))
BOB = Actor(subject="bob", roles=("approver",))
OLGA = Actor(subject="olga", roles=("operator",))


def step(text: str) -> None:
    console.print(f"\n[bold cyan]▶ {text}[/bold cyan]")


def train(path: Path, seed: int) -> dict[str, float]:
    """A real scikit-learn classifier on synthetic card transactions."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    x, y = make_classification(n_samples=2000, n_features=12, weights=[0.9], random_state=seed)
    x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=seed)
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    path.write_bytes(pickle.dumps(model))
    return {"auc": round(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]), 4)}


def run() -> None:
    ports = ServicePorts()
    client = Client(ports.url("registrar"), ports.url("projector"), token=dev_token("alice", *ALICE.roles))
    workdir = Path(tempfile.mkdtemp(prefix="modelog-demo-"))
    registered = []
    for run_number, seed in ((1, 11), (2, 12)):
        artifact = workdir / f"fraud-detector-run{run_number}.pkl"
        step(f"training run {run_number}: a logistic regression for card fraud")
        metrics = train(artifact, seed)
        digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
        console.print(f"  artifact {artifact.name}: {artifact.stat().st_size} bytes, "
                      f"sha256 {digest[:16]}…, auc {metrics['auc']}")
        step(f"registering it: POST {ports.url('registrar')}/v1/models/{MODEL}/versions")
        result = client.register_version(MODEL, artifact, run_id=f"train-{run_number}",
                                         metrics=metrics, description=f"training run {run_number}")
        console.print(f"  201: version {result['version']} accepted at seq {result['seq']} "
                      "(the projector already has it: read-your-writes)")
        registered.append(result["version"])

    step(f"reading back from the serving side: GET {ports.url('projector')}/v1/models/{MODEL}/versions")
    table = Table("version", "stage", "auc", "run", "sha256", "artifact")
    for v in client.list_versions(MODEL):
        if v["version"] in registered:
            table.add_row(str(v["version"]), v["stage"], str(v["metrics"].get("auc")),
                          v["run_id"] or "", v["artifact_sha256"][:16] + "…", v["artifact_uri"])
    console.print(table)

    step(f"a serving system subscribes to changes: GET {ports.url('projector')}/v1/changes?model={MODEL}")
    subscriber = ServingSubscriber(ports)
    subscriber.start()
    asyncio.run(promotion_workflow(ports, registered))
    subscriber.stop()

    step(f"the audit trail: GET {ports.url('auditor')}/v1/audit/models/{MODEL}/timeline")
    events = httpx.get(f"{ports.url('auditor')}/v1/audit/models/{MODEL}/timeline").json()["events"]
    trail = Table("seq", "event", "actor", "what", "hash", "prev_hash")
    for event in events[-14:]:
        trail.add_row(str(event["seq"]), event["type"], event["actor"]["subject"], describe(event["payload"]),
                      event["hash"][:12] + "…", event["prev_hash"][:12] + "…")
    console.print(trail)
    console.print("\nEach event's hash covers the previous one: the log is the audit trail.")

    step("verifying the whole log: modelog audit verify")
    verdict = asyncio.run(verify_log())
    console.print(f"  {'intact' if verdict.intact else 'BROKEN'}: {verdict.events} events of "
                  f"{verdict.models} models re-read from Kafka, every hash recomputed")
    console.print("Stop everything with [bold]make down[/bold].")
    client.close()


class Workflow:
    """Commands published straight to modelog.commands, as a pipeline or another
    service would, each answered with its committed outcome."""

    def __init__(self, ports: ServicePorts):
        # Each command signed by the dev issuer for its actor, as an identity
        # provider would sign for a pipeline or a reviewer.
        self.publisher = CommandPublisher(EngineEndpoints(), sign=signed)
        self.projector = httpx.AsyncClient(base_url=ports.url("projector"), timeout=30)

    async def send(self, kind, actor: Actor, **fields) -> dict:
        command = kind(command_id=uuid4(), model=MODEL, actor=actor,
                       issued_at=datetime.now(timezone.utc), **fields)
        await self.publisher.publish(command)
        outcome = (await self.projector.get(f"/v1/commands/{command.command_id}", params={"wait": 10})).json()
        outcome["command_id"] = command.command_id
        mark = "[green]accepted[/green]" if outcome.get("accepted") else \
            f"[red]refused: {outcome.get('reason')}[/red] — {outcome.get('message')}"
        console.print(f"  {actor.subject:>5} {kind.__name__}"
                      f"{' v' + str(fields['version']) if 'version' in fields else ''}"
                      f"{' -> ' + fields['to_stage'] if 'to_stage' in fields else ''}: {mark}")
        return outcome


async def promotion_workflow(ports: ServicePorts, registered: list[int]) -> None:
    first, second = registered
    flow = Workflow(ports)
    await flow.publisher.start()
    try:
        step(f"promoting v{first}: Staging needs no approval, Production needs a reviewer's")
        await flow.send(c.RequestTransition, ALICE, version=first, to_stage="Staging")
        request = await flow.send(c.RequestTransition, ALICE, version=first, to_stage="Production")
        step("alice tries to approve her own request: four-eyes says no")
        await flow.send(c.ApproveTransition, ALICE, request_id=request["command_id"])
        step("bob approves: the approval and the promotion are one decision")
        await flow.send(c.ApproveTransition, BOB, request_id=request["command_id"])

        step(f"promoting v{second}: the previous Production version is archived in the same decision")
        await flow.send(c.RequestTransition, ALICE, version=second, to_stage="Staging")
        request = await flow.send(c.RequestTransition, ALICE, version=second, to_stage="Production",
                                  archive_existing=True)
        await flow.send(c.ApproveTransition, BOB, request_id=request["command_id"])
        await show_stages(flow, registered)

        step(f"an incident: olga rolls back to v{first} in one command (no approval wait)")
        await flow.send(c.Rollback, OLGA, version=first, comment="v2 false positives spike")
        await show_stages(flow, registered)
    finally:
        await flow.publisher.stop()
        await flow.projector.aclose()


async def show_stages(flow: Workflow, registered: list[int]) -> None:
    versions = (await flow.projector.get(f"/v1/models/{MODEL}/versions")).json()["versions"]
    table = Table("version", "stage")
    for v in versions:
        if v["version"] in registered or v["stage"] == "Production":
            table.add_row(str(v["version"]), v["stage"])
    console.print(table)


def describe(payload: dict) -> str:
    """One line of what an event says, for the timeline."""
    match payload["type"]:
        case "StageChanged":
            return f"v{payload['version']} {payload['from_stage']} -> {payload['to_stage']} ({payload['why']})"
        case "CommandRejected":
            return f"{payload['command_type']}: {payload['reason']}"
        case "TransitionRequested":
            return f"v{payload['version']} -> {payload['to_stage']}, {payload['approvals_required']} approval(s) needed"
        case "ApprovalGranted":
            return f"v{payload['version']} approved ({payload['approvals']}/{payload['approvals_required']})"
        case "VersionRegistered":
            return f"v{payload['version']} sha256 {payload['artifact']['sha256'][:10]}…"
    return ""


async def verify_log():
    from modelog.adapters.log_reader import read_committed
    from modelog.verify import StoredRecord, verify

    records = await read_committed(EngineEndpoints(), "modelog.events")
    return verify(StoredRecord(r.partition, r.offset, r.value) for r in records)


class ServingSubscriber(threading.Thread):
    """What a serving system does: follow the change feed (SSE) and hot-swap
    when the Production version changes. Prints each change as it arrives."""

    def __init__(self, ports: ServicePorts):
        super().__init__(daemon=True)
        self.url = f"{ports.url('projector')}/v1/changes"
        self.params = {"model": MODEL, "type": ["StageChanged", "AliasSet"]}
        self.stopping = threading.Event()
        self.connected = threading.Event()

    def start(self) -> None:
        super().start()
        self.connected.wait(10)

    def run(self) -> None:
        with httpx.stream("GET", self.url, params=self.params, timeout=None) as response:
            for line in response.iter_lines():
                self.connected.set()
                if self.stopping.is_set():
                    return
                if line.startswith("data:"):
                    payload = json.loads(line[5:])["data"]["payload"]
                    swap = "  → load it" if payload.get("to_stage") == "Production" else ""
                    console.print(f"  [magenta]serving subscriber[/magenta]: v{payload['version']} "
                                  f"{payload.get('from_stage')} -> {payload.get('to_stage')}{swap}")

    def stop(self) -> None:
        time.sleep(0.5)  # let the last changes arrive before the next section
        self.stopping.set()
