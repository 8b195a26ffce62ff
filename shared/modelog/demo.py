"""The scripted scenario behind `make demo`: what modelog does, step by step.

It grows with every capability that lands. Today: train a real model, register
two versions of `fraud-detector`, read them back from the serving side, and
show the audit trail the log keeps.
"""

import hashlib
import pickle
import tempfile
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from modelog.client import Client
from modelog.settings import ServicePorts

console = Console(width=110)
MODEL = "fraud-detector"


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
    client = Client(ports.url("registrar"), ports.url("projector"))
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

    step(f"the audit trail: GET {ports.url('auditor')}/v1/audit/models/{MODEL}/timeline")
    events = httpx.get(f"{ports.url('auditor')}/v1/audit/models/{MODEL}/timeline").json()["events"]
    trail = Table("seq", "event", "actor", "hash", "prev_hash")
    for event in events[-6:]:
        trail.add_row(str(event["seq"]), event["type"], event["actor"]["subject"],
                      event["hash"][:12] + "…", event["prev_hash"][:12] + "…")
    console.print(trail)
    console.print("\nEach event's hash covers the previous one: the log is the audit trail.")
    console.print("Stop everything with [bold]make down[/bold].")
    client.close()
