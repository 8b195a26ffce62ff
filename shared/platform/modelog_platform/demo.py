"""The scripted scenario behind `make demo`: what modelog does, step by step.

It grows with every capability that lands. Today: people with their own
tokens — Alice, who trains models, and Bob, who reviews them — Olga, on
call, Pat, who runs the platform, and Ines from internal audit. Alice trains a
real model twice and registers both versions through the CLI; a serving
process keeps the Production model loaded with the SDK's ModelWatcher and
prints each swap; the versions walk the promotion workflow (Staging, Alice's
refused self-approval, Bob's approval); Pat's policy gains a rollback rule;
Olga sends the next version 10% of the traffic as a canary, routed by a
SplitWatcher that prints its swaps; the serving process answers requests while
its monitoring publishes signals, the canary fails, and the sentinel takes its
share back; promoted anyway, the version fails in Production and the sentinel
rolls it back (demo_sentinel.py); Olga restarts the sentinel, which goes on
from the book it wrote rather than folding the whole log; then the audit trail answers: the timeline, why a
version is in Production (the sentinel, its rule and its evidence), the model
as it stood before the rollback; Ines seals the chain heads, and verifies the
whole log against its chains and its seals. Then Dana, a data scientist
whose training code uses MLflow's client, registers into modelog by changing
one line, and the same rules, approval and audit trail apply.
"""

import asyncio
import hashlib
import json
import logging
import logging.handlers
import os
import pickle
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import click
import httpx
import typer
from aiokafka import AIOKafkaProducer
from rich.console import Console

from modelog import ModelWatcher, SplitWatcher, WatcherEvent
from modelog.cli import with_installed_commands
from modelog.client import Client
from modelog_platform import services
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.demo_sentinel import (
    Tally,
    rollback_rule,
    sentinel_window_s,
    serve_until_canary_removed,
    serve_until_rolled_back,
)
from modelog_platform.engines.layout import Layout, deploy_dir
from modelog_platform.engines.mlflow import MlflowTracking, available
from modelog_platform.engines.oidc import PEOPLE as OIDC_PEOPLE
from modelog_platform.engines.oidc import Oidc
from modelog_platform.identity.dev import dev_token
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints, LocalStack, ServicePorts

console = Console(width=110)
MODEL = "fraud-detector"
# The people of the scenario and the roles their tokens carry.
PEOPLE = {
    "alice": ("publisher", "approver"),  # trains and registers; may review others' work
    "bob": ("approver",),                # reviews
    "olga": ("operator",),               # on call: may roll back
    "ines": ("auditor",),                # internal audit: reads every model's trail
    "pat": ("admin",),                   # runs the platform: sets the models' policies
    "dana": ("publisher",),              # data scientist: MLflow code, registers and asks for promotions
}
MLFLOW_MODEL = "churn-predictor"


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


class Terminal:
    """Runs `modelog ...` as one person, with that person's token, and shows it."""

    def __init__(self):
        self.tokens = {person: dev_token(person, *roles) for person, roles in PEOPLE.items()}

    def run(self, person: str, *args: str) -> int:
        console.print(f"[dim]{person}$[/dim] [bold]modelog {' '.join(args)}[/bold]", highlight=False)
        os.environ["MODELOG_TOKEN"] = self.tokens[person]
        try:
            with_installed_commands()(args=list(args), standalone_mode=False)
            return 0
        except (typer.Exit, click.exceptions.Exit) as done:
            return done.exit_code
        finally:
            os.environ.pop("MODELOG_TOKEN", None)

    def client(self, person: str) -> Client:
        return Client(token=self.tokens[person])


def pending_request(terminal: Terminal, version: int, model: str = MODEL) -> str:
    with terminal.client("alice") as client:
        return next(p["request_id"] for p in client.pending_transitions(model) if p["version"] == version)


def run() -> None:
    ports = ServicePorts()
    terminal = Terminal()
    workdir = Path(tempfile.mkdtemp(prefix="modelog-demo-"))
    step("each person has a token from the development issuer (`modelog token issue --sub bob --roles approver`)")
    for person, roles in PEOPLE.items():
        console.print(f"  {person:>5}: {', '.join(roles)}")

    registered = []
    for run_number, seed in ((1, 11), (2, 12)):
        artifact = workdir / f"fraud-detector-run{run_number}.pkl"
        step(f"alice trains run {run_number}: a logistic regression for card fraud, and registers it")
        metrics = train(artifact, seed)
        digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
        console.print(f"  {artifact.name}: {artifact.stat().st_size} bytes, sha256 {digest[:16]}…, "
                      f"auc {metrics['auc']}")
        terminal.run("alice", "register", MODEL, str(artifact), "--metric", f"auc={metrics['auc']}",
                     "--run-id", f"train-{run_number}", "--description", f"training run {run_number}")
        with terminal.client("alice") as client:
            registered.append(max(v["version"] for v in client.list_versions(MODEL)))
    first, second = registered[-2:]

    step("alice's CI lost the answer to a metrics report and sends it again with the same Idempotency-Key: "
         "the retry gets the first outcome, and the report is made once (docs/idempotency.md)")
    with terminal.client("alice") as client:
        key = f"ci-latency-report-v{second}"
        answers = [client.report_metrics(MODEL, second, {"latency_ms": 12.5}, idempotency_key=key) for _ in range(2)]
    for label, answer in zip(("first answer", "the retry's"), answers, strict=True):
        console.print(f"  {label}: command {answer['command_id']}, {answer['status']}, seq {answer.get('seq')}")

    step("what the registry holds now (the projector already has it: read-your-writes)")
    terminal.run("alice", "show", MODEL)

    step("a serving process keeps the Production model loaded with the SDK's ModelWatcher (docs/serving.md): "
         "it follows the change feed, downloads each new version digest-checked and swaps it in atomically")
    serving = ModelWatcher(MODEL, load_pickle, stage="Production", token=dev_token("serving-eu-1", "server"),
                           on_event=print_serving)
    serving.start()
    serving.wait_for(timeout_s=10)  # what is in Production already, if anything

    step(f"promoting v{first}: Staging needs no approval, Production needs a reviewer's")
    terminal.run("alice", "promote", MODEL, str(first), "--to", "Staging")
    terminal.run("alice", "promote", MODEL, str(first), "--to", "Production", "--comment", "beats the baseline")
    request = pending_request(terminal, first)
    step("alice tries to approve her own request: four-eyes says no (exit code 1)")
    terminal.run("alice", "approve", MODEL, request)
    step("bob approves: the approval and the promotion are one decision")
    terminal.run("bob", "approve", MODEL, request, "--comment", "looks good")
    serving.wait_for(first, timeout_s=60)

    window_s = rule_chapter(terminal, ports)
    step(f"v{second} goes to Staging, and olga sends it 10% of the traffic as a canary: a split is a decision "
         "too (the operator role, weights making 100, at most the policy's canary share)")
    terminal.run("alice", "promote", MODEL, str(second), "--to", "Staging")
    terminal.run("olga", "split", "set", MODEL, f"{first}=90", f"{second}=10", "--comment", "canary")
    canary_chapter(terminal, first, second, window_s)
    before_rollback = sentinel_chapter(terminal, serving, first, second, window_s)
    serving.stop()
    terminal.run("olga", "history", MODEL)
    sentinel_restart_chapter(ports)

    step("olga rebuilds the read models from the log and switches to them while the registry runs (blue/green)")
    terminal.run("olga", "projections", "rebuild", "--switch")
    terminal.run("olga", "show", MODEL)

    step("the audit trail: every event, hash-chained (modelog audit timeline)")
    terminal.run("ines", "audit", "timeline", MODEL)
    step(f"why is v{first} in Production?")
    terminal.run("ines", "audit", "why", MODEL, str(first))
    step(f"the model as it stood before the sentinel's rollback ({before_rollback})")
    terminal.run("ines", "audit", "as-of", MODEL, "--at", before_rollback)
    step("a seal: every model's chain head, Merkle-rooted, signed, kept in S3 under Object Lock")
    terminal.run("ines", "audit", "seal")
    step("verifying the whole log: every event re-read from Kafka, every hash recomputed, every seal checked")
    terminal.run("ines", "audit", "verify")
    step("mallory reaches the broker and tries to append to the log: only the promoter may write it")
    for attempt, refusal in asyncio.run(forgery_attempts()):
        console.print(f"  mallory, {attempt}: [red]refused[/red] ({refusal})", highlight=False)
    console.print("  an event appended anyway (a broker admin bypasses ACLs) is not signed by the promoter:"
                  " every reader quarantines it (docs/threat-model.md)")
    mlflow_chapter(terminal, ports)
    console_chapter(ports)
    console.print("\nStop everything with [bold]make down[/bold].")


def rule_chapter(terminal: Terminal, ports: ServicePorts) -> int:
    """Pat gives the model a rollback rule over one of the sentinel's windows; returns that window."""
    window_s = sentinel_window_s(ports, MODEL)
    rule = rollback_rule(window_s)
    step(f"pat gives {MODEL}'s policy a rollback rule: if more than {rule['max_error_percent']}% of a version's "
         f"requests fail over {window_s} s, once it served at least {rule['min_requests']} there, a canary's share "
         "goes back to Production, and a Production version is replaced by the version before it")
    with terminal.client("pat") as client:
        # The rest as the default policy has it: one reviewer's approval for Production.
        answer = client.set_policy(MODEL, {"rollback_rules": [rule]})
    console.print(f"  policy set (seq {answer.get('seq')}): \"rollback_rules\": [{json.dumps(rule)}]", highlight=False)
    return window_s


def sentinel_chapter(terminal: Terminal, serving: ModelWatcher, first: int, second: int, window_s: int) -> str:
    """`second` reaches Production, fails in serving, and the sentinel puts
    `first` back; returns an instant just before the rollback."""
    step(f"alice and bob put the canary's failures down to its hosts and promote v{second} anyway: the previous "
         "Production version is archived in the same decision")
    terminal.run("alice", "promote", MODEL, str(second), "--to", "Production")
    terminal.run("bob", "approve", MODEL, pending_request(terminal, second, MODEL))
    serving.wait_for(second, timeout_s=60)
    terminal.run("alice", "alias", MODEL, "champion", str(second))
    before_rollback = datetime.now(timezone.utc).isoformat(timespec="seconds")
    time.sleep(1)  # the rollback, seconds later at the earliest, comes after this instant on the clock
    step(f"every request now goes to v{second}, which fails 1 in 10 in Production too. The sentinel judges only "
         f"whole windows after v{second} went live, so the rollback comes one to two windows from now, "
         "with no one paged")
    started = time.monotonic()
    tally = asyncio.run(serve_until_rolled_back(MODEL, serving, second, first, timeout_s=3 * window_s + 60))
    print_tally(tally)
    console.print(f"  the sentinel rolled Production back to v{first} {time.monotonic() - started:.0f} s after "
                  f"v{second}'s errors began", highlight=False)
    return before_rollback


def sentinel_restart_chapter(ports: ServicePorts) -> None:
    """Olga restarts the sentinel, as a deploy would: it reads its book back and folds only the log after it."""
    step("olga restarts the sentinel (a deploy): it goes on from the book it wrote to its directory, checked "
         "against the log, and folds only the events after it, however long the log (docs/decisions/0015)")
    local = LocalStack()
    services.stop("sentinel", local)
    started = time.monotonic()
    services.start("sentinel", local)
    services.wait_ready("sentinel", local, ports, timeout_s=300)
    status = httpx.get(f"{ports.url('sentinel')}/v1/status", timeout=10).json()
    console.print(f"  ready again {time.monotonic() - started:.1f} s later: it went on from {status['started_from']} "
                  f"and folded the {status['folded_at_start']:,} events of the log after it; its book now holds "
                  f"{status['events_folded']:,} events of {status['models']:,} models", highlight=False)


def print_tally(tally: Tally) -> None:
    for version in sorted(tally.requests, reverse=True):
        console.print(f"  v{version} answered {tally.requests[version]:,} requests, {tally.errors[version]:,} "
                      f"failed", highlight=False)


def load_pickle(path: Path) -> object:
    with path.open("rb") as f:
        return pickle.load(f)


def print_serving(event: WatcherEvent) -> None:
    console.print(f"  [magenta]serving process[/magenta]: {event.kind}: {event.detail}", highlight=False)


def canary_chapter(terminal: Terminal, champion: int, canary: int, window_s: int) -> None:
    """A serving process that follows the split routes each request by a
    stable hash of its key: the same customer always meets the same version.
    The canary fails some of its requests, and the sentinel takes its share back."""
    router = SplitWatcher(MODEL, load_pickle, token=dev_token("serving-eu-1", "server"), instance="serving-eu-1-split",
                          on_event=print_serving)
    with router:
        router.wait_for_weights({champion: 90, canary: 10}, timeout_s=60)
        served = [router.route(f"customer-{n}")[0] for n in range(1000)]
        console.print(f"  1,000 customers routed: {served.count(champion)} to v{champion}, {served.count(canary)} "
                      f"to v{canary}; customer-7 always meets v{served[7]}", highlight=False)
        step(f"the serving process answers about 100 requests a second through the split, and its monitoring "
             f"publishes each second's requests, errors and latency per version to modelog.signals (as the stack's "
             f"`publisher` Kafka user). The canary v{canary} turns out broken: the demo makes it fail 1 request in "
             f"10. The sentinel sums the signals in windows of {window_s} s and judges only whole windows after the "
             "canary took its share, so it removes the canary one to two windows from now")
        started = time.monotonic()
        tally = asyncio.run(serve_until_canary_removed(MODEL, router, canary, champion, timeout_s=3 * window_s + 60))
    print_tally(tally)
    console.print(f"  the sentinel gave the canary's share back to v{champion} {time.monotonic() - started:.0f} s "
                  "after its errors began: its split, with the rule and the figures, is in the timeline below",
                  highlight=False)
    terminal.run("olga", "split", "show", MODEL)


def mlflow_chapter(terminal: Terminal, ports: ServicePorts) -> None:
    """Dana's MLflow training script (docs/samples/train_with_mlflow.py) against
    the team's MLflow tracking server, with modelog as its registry."""
    step("dana's training code uses MLflow; one line changes: mlflow.set_registry_uri("
         f"{ports.url('registrar')!r}) (docs/mlflow.md)")
    if not available():
        console.print("  [yellow]the mlflow package is not installed here, so there is no tracking server: "
                      "`uv sync --all-packages` installs it[/yellow]")
        return
    tracking = MlflowTracking().url(Layout(EngineEndpoints(), LocalStack(), lambda _: None))
    script = deploy_dir().parent / "docs" / "samples" / "train_with_mlflow.py"  # the checkout's, as make demo runs

    def dana_runs(what: str) -> None:
        console.print(f"[dim]dana$[/dim] [bold]MLFLOW_TRACKING_URI={tracking} python {script.name} "
                      f"{ports.url('registrar')} {MLFLOW_MODEL} {what}[/bold]", highlight=False)
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "MLFLOW_TRACKING_TOKEN": terminal.tokens["dana"]}
        done = subprocess.run([sys.executable, str(script), ports.url("registrar"), MLFLOW_MODEL, what],
                              env=env, capture_output=True, text=True, timeout=600)
        for line in done.stdout.splitlines():
            console.print(f"  {line}", highlight=False, markup=False)
        if done.returncode != 0:
            console.print(f"  [red]the script failed ({done.returncode}):[/red]\n{done.stderr[-2000:]}", highlight=False)

    step("she trains and logs with MLflow: modelog copies the logged model's files from her tracking server, "
         "pins them with a manifest of sha256s, and the promotion rules are modelog's")
    dana_runs("train")
    with terminal.client("dana") as client:
        version = max(v["version"] for v in client.list_versions(MLFLOW_MODEL))
    step("modelog's view of the version MLflow registered: the files' manifest is its artifact")
    terminal.run("dana", "show", MLFLOW_MODEL, str(version))
    step("bob reviews and approves through modelog, as for any model")
    terminal.run("bob", "approve", MLFLOW_MODEL, pending_request(terminal, version, MLFLOW_MODEL))
    step("the serving side loads models:/churn-predictor/Production with MLflow, from modelog's digest-checked copy")
    dana_runs("serve")
    step("and every MLflow call is in the audit trail")
    terminal.run("ines", "audit", "timeline", MLFLOW_MODEL)


def console_chapter(ports: ServicePorts) -> None:
    """Where the story goes on in a browser: the console, and how each person signs in."""
    lay = Layout(EngineEndpoints(), LocalStack(), lambda _: None)
    sign_in = f"{ports.url('registrar')}/console/sign-in/oidc"
    step(f"the console: {ports.url('registrar')}/console (docs/console.md); each person signs in at the "
         "stack's OpenID Connect provider through this link, with the password in the file named")
    for person, who in OIDC_PEOPLE.items():
        roles = ", ".join(g.removeprefix("modelog-") for g in who["groups"] if g.startswith("modelog-"))
        console.print(f"  {person:>5} ({roles}): {sign_in}  password: {Oidc().password_file(lay, person)}",
                      highlight=False)
    console.print("  or, as anyone with any roles: [bold]modelog ui --as bob --roles approver[/bold] "
                  "(a one-time link)", highlight=False)


async def forgery_attempts() -> list[tuple[str, str]]:
    """Mallory's tries at producing into modelog.events, and how the broker answers each."""
    endpoints = EngineEndpoints()
    secured = kafka_connection(endpoints)
    attempts = {
        "without credentials": {"bootstrap_servers": endpoints.kafka_bootstrap, "security_protocol": "PLAINTEXT"},
        "with a guessed password": {**secured, "sasl_plain_username": "promoter", "sasl_plain_password": "guess"},
    }
    answers = []
    # aiokafka logs why a connection failed and raises a generic error: keep
    # its words to show them, instead of letting them scroll past on stderr.
    said = logging.handlers.BufferingHandler(100)
    library = logging.getLogger("aiokafka")
    library.addHandler(said)
    library.propagate = False
    try:
        for attempt, connection in attempts.items():
            said.flush()
            producer = AIOKafkaProducer(request_timeout_ms=3000, **connection)
            try:
                await asyncio.wait_for(producer.start(), 10)
                await asyncio.wait_for(producer.send_and_wait(EVENTS_TOPIC, b"{}", key=MODEL.encode()), 10)
                answers.append((attempt, "NOT REFUSED: check the broker's security settings"))
            except Exception as error:  # every way the broker says no is the answer shown
                why = said.buffer[-1].getMessage() if said.buffer else str(error)
                answers.append((attempt, why.split(": ", 1)[-1]))
            finally:
                await producer.stop()
    finally:
        library.removeHandler(said)
        library.propagate = True
    return answers


