"""`modelog import --from-mlflow URI`: an existing MLflow registry replayed into
modelog as events (docs/mlflow-import.md).

Reads MLflow and modelog, plans with modelog.mlflow_plan (only what is
missing), then writes step by step with a progress bar. Versions are
registered through modelog's MLflow API, so the registrar copies and hashes the
artifacts it can read exactly as it does for MLflow's own client; stages are
imported by an admin and recorded as imported. Exit codes as the registry
commands: 0 done, 1 something was refused, 3 MLflow or modelog unreachable.
"""

import tempfile
import time
from pathlib import Path

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from modelog.cli.exits import REFUSED, UNREACHABLE
from modelog.cli.registry import client, console, talks_to_registry
from modelog.client import Client, ModelogError, error_class
from modelog.mlflow_plan import (
    CreateModel,
    DescribeModel,
    DescribeVersion,
    ImportStage,
    ModelogModel,
    ModelogVersion,
    ModelPlan,
    RegisterDeleted,
    RegisterVersion,
    SetAlias,
    Step,
    TagModel,
    TagVersion,
    plan,
)
from modelog.mlflow_registry import API, MlflowUnreadable, mlflow_http, read_registry

REGISTRATION_WAIT_S = 300  # as long as MLflow's own client waits for a version to be ready


def import_(from_mlflow: str = typer.Option(..., "--from-mlflow", metavar="URI",
                                            help="the MLflow server whose registry to import, e.g. http://mlflow:5000"),
            model: list[str] = typer.Option([], "--model", help="import only this MLflow model; repeatable"),
            dry_run: bool = typer.Option(False, "--dry-run", help="say what would be written, write nothing")) -> None:
    """Replay an MLflow registry into modelog: models, versions (artifacts copied
    and hashed where modelog can read them), descriptions, tags, stages and
    aliases. Only what modelog lacks is written: a second import adds nothing."""
    try:
        with mlflow_http(from_mlflow) as mlflow, client() as registry:
            plans = _plans(mlflow, registry, set(model) or None)
            if dry_run:
                _say_plans(plans)
                return
            failures = _carry_out(registry, from_mlflow, plans)
    except MlflowUnreadable as error:
        console.print(f"[red]cannot read the MLflow registry[/red]: {error}", highlight=False)
        raise typer.Exit(UNREACHABLE) from None
    _say_outcome(plans, failures)
    if failures:
        raise typer.Exit(REFUSED)


def _plans(mlflow: httpx.Client, registry: Client, only: set[str] | None) -> list[ModelPlan]:
    with _progress() as progress:
        reading = progress.add_task(f"reading MLflow at {mlflow.base_url}", total=None)
        source = read_registry(mlflow, only, seen=lambda name: progress.advance(reading))
        comparing = progress.add_task("reading modelog", total=None)
        held = modelog_state(registry, {m.name for m in source}, seen=lambda name: progress.advance(comparing))
    return plan(source, held)


def modelog_state(registry: Client, names: set[str], seen=lambda name: None) -> dict[str, ModelogModel]:
    """What modelog holds of the models named, deleted ones included."""
    held, after = {}, None
    while True:
        page = _answer(registry.projector.get("/v1/models", params={
            "limit": 1000, "include_deleted": "true", **({"after": after} if after else {})}))
        for row in page["models"]:
            if row["name"] in names:
                sources = {} if row["deleted"] else mlflow_sources(registry, row["name"])
                versions = () if row["deleted"] else tuple(
                    ModelogVersion(v["version"], v.get("run_id") or "", v.get("description") or "", v["tags"],
                                   v["stage"], v["deleted"], tuple(v["aliases"]), sources.get(v["version"]))
                    for v in registry.list_versions(row["name"]))
                held[row["name"]] = ModelogModel(row["name"], row.get("description") or "", row["tags"],
                                                 row["deleted"], versions)
                seen(row["name"])
        if not (after := page["next"]):
            return held


def mlflow_sources(registry: Client, name: str) -> dict[int, str]:
    """The source each live version was registered with through modelog's MLflow
    API, as that API answers it (a name modelog takes has no quote to escape)."""
    sources, token = {}, None
    while True:
        page = _mlflow_answer(registry.registrar.get(f"{API}/model-versions/search", params={
            "filter": f"name='{name}'", "max_results": 1000, **({"page_token": token} if token else {})}))
        sources.update({int(v["version"]): v["source"] for v in page.get("model_versions", [])})
        if not (token := page.get("next_page_token")):
            return sources


def _carry_out(registry: Client, origin: str, plans: list[ModelPlan]) -> dict[str, tuple[Step, str]]:
    """Write each model's steps in order; a refused step ends that model's import
    (the steps after it rest on it) and the others go on."""
    failures: dict[str, tuple[Step, str]] = {}
    with _progress() as progress:
        task = progress.add_task("importing", total=sum(len(p.steps) for p in plans))
        for each in plans:
            for step in each.steps:
                progress.update(task, description=f"importing {each.model}")
                try:
                    carry_out(registry, origin, step)
                except ModelogError as error:
                    failures[each.model] = (step, f"{error.code}: {error.message}")
                    progress.advance(task, len(each.steps) - each.steps.index(step))
                    break
                except httpx.TransportError as error:
                    failures[each.model] = (step, f"modelog unreachable ({error})")
                    return failures
                progress.advance(task)
    return failures


def carry_out(registry: Client, origin: str, step: Step) -> None:
    """One step of a plan, as a write to modelog."""
    match step:
        case CreateModel():
            registry.create_model(step.model, description=step.description, tags=dict(step.tags))
        case DescribeModel():
            registry.update_model(step.model, step.description)
        case TagModel():
            registry.set_tag(step.model, step.key, step.value)
        case RegisterVersion():
            register_through_mlflow_api(registry, step)
        case RegisterDeleted():
            _register_deleted(registry, origin, step)
        case DescribeVersion():
            registry.update_version(step.model, step.version, step.description)
        case TagVersion():
            registry.set_tag(step.model, step.key, step.value, version=step.version)
        case ImportStage():
            # The stage as MLflow recorded it: an admin's import, which the log records as imported.
            registry._write("POST", f"/v1/models/{step.model}/versions/{step.version}/transitions", {
                "to_stage": step.stage, "archive_existing": False,
                "comment": f"imported from MLflow at {origin}",
                "imported_from": f"MLflow registry at {origin}: {step.model} version {step.version}"})
        case SetAlias():
            registry.set_alias(step.model, step.alias, step.version)


def register_through_mlflow_api(registry: Client, step: RegisterVersion) -> None:
    """Register as MLflow's client would, at modelog's MLflow API: the registrar
    reads the source (copying and hashing the tree) or keeps it unverified."""
    body = {"name": step.model, "source": step.source, "run_id": step.run_id, "run_link": step.run_link,
            "description": step.description, "tags": [{"key": k, "value": v} for k, v in step.tags.items()],
            **({"model_id": step.model_id} if step.model_id else {})}
    version = _mlflow_answer(registry.registrar.post(f"{API}/model-versions/create", json=body))["model_version"]
    deadline = time.monotonic() + REGISTRATION_WAIT_S
    while version.get("status") == "PENDING_REGISTRATION" and time.monotonic() < deadline:
        time.sleep(1)
        version = _mlflow_answer(registry.registrar.get(f"{API}/model-versions/get", params={
            "name": step.model, "version": version["version"]}))["model_version"]
    if int(version["version"]) != step.version:
        raise ModelogError(409, "version_number_differs",
                           f"modelog registered MLflow's version {step.version} of {step.model} as version "
                           f"{version['version']}: someone registered a version meanwhile; import again", {})
    if version.get("status", "READY") != "READY":
        raise ModelogError(422, "registration_failed", f"version {step.version} of {step.model} is "
                           f"{version.get('status')}: {version.get('status_message', '')}", {})


def _register_deleted(registry: Client, origin: str, step: RegisterDeleted) -> None:
    """A stand-in for a version MLflow no longer has: registered and deleted at once."""
    with tempfile.TemporaryDirectory() as scratch:
        stand_in = Path(scratch) / "deleted-in-mlflow.txt"
        stand_in.write_text(f"{step.why} when the registry at {origin} was imported into modelog.\n")
        registry.register_version(step.model, stand_in, description=f"stand-in: {step.why}; "
                                  "registered and deleted by the import so later versions keep MLflow's numbers")
    registry.delete_version(step.model, step.version)


def _mlflow_answer(response: httpx.Response) -> dict:
    if response.is_success:
        return response.json()
    try:
        body = response.json()
    except ValueError:
        body = {}
    raise error_class(response.status_code)(response.status_code, body.get("error_code", "http_error"),
                                            body.get("message", response.text[:500]), body)


def _answer(response: httpx.Response) -> dict:
    if not response.is_success:
        _mlflow_answer(response)
    return response.json()


def describe(step: Step) -> str:
    match step:
        case CreateModel():
            return f"create {step.model}" + (f" with tags {', '.join(step.tags)}" if step.tags else "")
        case DescribeModel():
            return f"describe {step.model}"
        case TagModel():
            return f"tag {step.model} {step.key}={step.value}"
        case RegisterVersion():
            return f"register {step.model} version {step.version} from {step.source}"
        case RegisterDeleted():
            return f"register and delete {step.model} version {step.version} ({step.why})"
        case DescribeVersion():
            return f"describe {step.model} version {step.version}"
        case TagVersion():
            return f"tag {step.model} version {step.version} {step.key}={step.value}"
        case ImportStage():
            return f"import {step.model} version {step.version}'s stage {step.stage}"
        case SetAlias():
            return f"point {step.model}@{step.alias} at version {step.version}"


def _say_plans(plans: list[ModelPlan]) -> None:
    for each in plans:
        console.print(f"[bold]{each.model}[/bold]: {len(each.steps)} to write, {each.present} already in modelog",
                      highlight=False)
        for step in each.steps:
            console.print(f"  would {describe(step)}", highlight=False)
        _say_skipped(each)


def _say_outcome(plans: list[ModelPlan], failures: dict[str, tuple[Step, str]]) -> None:
    written = 0
    for each in plans:
        if each.model in failures:
            step, why = failures[each.model]
            done = each.steps.index(step)
            written += done
            console.print(f"[red]failed[/red] {each.model}: {done} of {len(each.steps)} written; "
                          f"could not {describe(step)}: {why}", highlight=False)
        else:
            written += len(each.steps)
            verb = "[green]imported[/green]" if each.steps else "[dim]unchanged[/dim]"
            console.print(f"{verb} {each.model}: {len(each.steps)} written, {each.present} already in modelog",
                          highlight=False)
        _say_skipped(each)
    skipped = sum(len(p.skipped) for p in plans)
    console.print(f"{len(plans)} MLflow models: {written} written, {sum(p.present for p in plans)} already in "
                  f"modelog, {skipped} skipped, {len(failures)} failed", highlight=False)


def _say_skipped(each: ModelPlan) -> None:
    for skipped in each.skipped:
        console.print(f"  [yellow]skipped[/yellow] {skipped.what}: {skipped.why}", highlight=False)


def _progress() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


def install(app: typer.Typer) -> None:
    app.command("import")(talks_to_registry(import_))
