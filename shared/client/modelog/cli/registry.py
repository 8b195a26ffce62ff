"""The registry commands of `modelog`: register, promote, approve, deny,
rollback, alias, ls, show, history, download.

Exit codes a script can rely on: 0 done; 1 the registry refused (the code is
printed); 2 bad usage; 3 the registry could not be reached or failed.
"""

import functools
import json
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from modelog.cli.exits import REFUSED, UNREACHABLE, USAGE, unreachable
from modelog.client import Client, InvalidTree, ModelogError, TransitionStage, tree_files
from modelog.settings import ClientSettings

console = Console()
# How `show` names what a version's digest covers (its artifact_form).
FORMS = {"file": "file", "manifest": "tree", "unverified": "unverified"}


def talks_to_registry(command):
    """Turn the registry's refusals and outages into a message and an exit code."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ModelogError as error:
            console.print(f"[red]refused[/red] {error.code}: {error.message}", highlight=False)
            for problem in error.problems:
                console.print(f"  {problem}", highlight=False)
            for rule in error.body.get("error", {}).get("rule_results", []):
                mark = "[green]pass[/green]" if rule["passed"] else "[red]fail[/red]"
                console.print(f"  {mark} {rule['rule']}: {rule['detail']}", highlight=False)
            raise typer.Exit(exit_code(error)) from None
        except httpx.TransportError as error:
            where = ClientSettings.from_environment()
            raise unreachable("registry", {"MODELOG_REGISTRAR_URL": where.registrar_url,
                                           "MODELOG_PROJECTOR_URL": where.projector_url}, error) from None
    return run


def exit_code(error: ModelogError) -> int:
    """A request the API cannot take is the caller's usage error; other 4xx are refusals."""
    if error.status == 422 and error.code == "invalid_request":
        return USAGE
    return REFUSED if 400 <= error.status < 500 or error.status == 0 else UNREACHABLE


def client() -> Client:
    return Client()


def pairs(items: list[str], what: str, cast=str) -> dict:
    """`name=value` options as a dict; a malformed one is a usage error."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} must be name=value, not {item!r}")
        try:
            out[key] = cast(value)
        except ValueError:
            raise typer.BadParameter(f"{what} {key}: {value!r} is not a number") from None
    return out


def transfer_progress() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), console=console, transient=True)


def said(result: dict) -> None:
    version = f" version {result['version']}" if result.get("version") else ""
    console.print(f"[green]done[/green] {result['model']}{version} (seq {result['seq']}): "
                  f"{', '.join(result.get('events', [])) or 'no change'}", highlight=False)


def register(model: str,
             artifact: Path = typer.Argument(..., exists=True, help="a file, or a model directory registered whole"),
             run_id: str = typer.Option(None, help="the training run that made it"),
             description: str = typer.Option(""),
             metric: list[str] = typer.Option([], help="name=value, repeatable"),
             param: list[str] = typer.Option([], help="name=value, repeatable"),
             tag: list[str] = typer.Option([], help="name=value, repeatable"),
             dataset_uri: str = typer.Option(None, help="where the training data is"),
             dataset_sha256: str = typer.Option(None, help="the training data's sha256"),
             model_card: Path = typer.Option(None, exists=True, dir_okay=False,
                                             help="a Markdown file: the version's model card"),
             signature: str = typer.Option(None, help="a JSON object: the model's inputs and outputs")) -> None:
    """Upload ARTIFACT, a file or a directory, and register it as MODEL's next version."""
    metrics, params, tags = pairs(metric, "metric", float), pairs(param, "param"), pairs(tag, "tag")
    files = _files_of(artifact)
    what = f"{artifact.name} ({len(files)} files)" if artifact.is_dir() else artifact.name
    with client() as registry, transfer_progress() as progress:
        task = progress.add_task(f"uploading {what}", total=sum(path.stat().st_size for _, path in files))
        result = registry.register_version(
            model, artifact, run_id=run_id, description=description, metrics=metrics, params=params,
            tags=tags, dataset_uri=dataset_uri, dataset_sha256=dataset_sha256,
            model_card=model_card.read_text(encoding="utf-8") if model_card else None,
            signature=_json_object(signature, "--signature"),
            progress=lambda done, total: progress.update(task, completed=done))
    said(result)


def _files_of(artifact: Path) -> list[tuple[str, Path]]:
    """The files an upload sends; a directory the registry would refuse is a usage error."""
    if not artifact.is_dir():
        return [(artifact.name, artifact)]
    try:
        return tree_files(artifact)
    except InvalidTree as why:
        raise typer.BadParameter(str(why), param_hint="ARTIFACT") from None


def _json_object(text: str | None, option: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint=option) from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=option)
    return value


def promote(model: str, version: int,
            to: TransitionStage = typer.Option(..., "--to", help="the stage to move to"),
            comment: str = typer.Option("")) -> None:
    """Move VERSION of MODEL to a stage, or open a request if approvals are needed."""
    with client() as registry:
        result = registry.request_transition(model, version, to, comment=comment)
    if "request_id" in result:
        console.print(f"[yellow]waiting for approval[/yellow] request {result['request_id']}: "
                      f"{model} version {version} -> {to}", highlight=False)
    else:
        said(result)


def approve(model: str, request_id: str, comment: str = typer.Option("")) -> None:
    """Approve a pending transition request (four-eyes: not your own)."""
    with client() as registry:
        said(registry.approve(model, request_id, comment=comment))


def deny(model: str, request_id: str, comment: str = typer.Option("")) -> None:
    """Deny a pending transition request."""
    with client() as registry:
        said(registry.deny(model, request_id, comment=comment))


def rollback(model: str, version: int, comment: str = typer.Option("")) -> None:
    """Put archived VERSION back into Production, archiving the current one."""
    with client() as registry:
        said(registry.rollback(model, version, comment=comment))


def alias(model: str, name: str, version: int = typer.Argument(None),
          delete: bool = typer.Option(False, "--delete"), protected: bool = typer.Option(False)) -> None:
    """Point @NAME at VERSION, or remove it with --delete."""
    if delete == (version is not None):
        raise typer.BadParameter("give a VERSION, or --delete")
    with client() as registry:
        said(registry.delete_alias(model, name) if delete
             else registry.set_alias(model, name, version, protected=protected))


def ls(name: str = typer.Option(None, help="name pattern: * any run, ? one character"),
       stage: str = typer.Option(None), tag: str = typer.Option(None, help="key=value")) -> None:
    """List models, with their versions per stage."""
    table = Table("model", "versions", "Staging", "Production", "seq", "updated")
    with client() as registry:
        for m in registry.list_models(name=name, stage=stage, tag=tag):
            stages = m["stages"]
            table.add_row(m["name"], str(m["versions"]), _numbers(stages.get("Staging")),
                          _numbers(stages.get("Production")), str(m["seq"]), m["updated_at"][:19])
    console.print(table)


def show(model: str, version: int = typer.Argument(None)) -> None:
    """A model and its versions, or one version in full."""
    with client() as registry:
        if version is not None:
            console.print_json(data=registry.get_version(model, version))
            return
        info, versions = registry.get_model(model), registry.list_versions(model)
        pending = registry.pending_transitions(model)
    console.print(f"[bold]{info['name']}[/bold] seq {info['seq']}  {info['description']}", highlight=False)
    table = Table("version", "stage", "aliases", "metrics", "artifact", "sha256", "registered by")
    for v in versions:
        table.add_row(str(v["version"]) + (" (deleted)" if v["deleted"] else ""), v["stage"],
                      " ".join(f"@{a}" for a in v["aliases"]),
                      " ".join(f"{k}={val:g}" for k, val in v["metrics"].items()),
                      FORMS.get(v.get("artifact_form", "file"), v.get("artifact_form")),
                      v["artifact_sha256"][:12], v["registered_by"])
    console.print(table)
    for p in pending:
        console.print(f"pending: request {p['request_id']} version {p['version']} -> {p['to_stage']} "
                      f"({len(p['approvals'])}/{p['approvals_required']} approvals, by {p['requested_by']})",
                      highlight=False)


def history(model: str) -> None:
    """Every stage change of MODEL's versions, oldest first."""
    table = Table("seq", "version", "from", "to", "why", "by", "at")
    with client() as registry:
        for h in registry.stage_history(model):
            table.add_row(str(h["seq"]), str(h["version"]), h["from_stage"], h["to_stage"], h["why"],
                          h["actor"], h["changed_at"][:19])
    console.print(table)


def download(model: str, version: int,
             out: Path = typer.Option(..., "--out", "-o",
                                      help="a file; for a version registered as a directory, a new directory")) -> None:
    """Download VERSION's artifact, a file or a whole directory, every sha256 checked."""
    with client() as registry, transfer_progress() as progress:
        task = progress.add_task(f"downloading {model} v{version}", total=None)
        try:
            registry.download(model, version, out,
                              progress=lambda done, total: progress.update(task, completed=done, total=total))
        except FileExistsError as why:
            raise typer.BadParameter(str(why), param_hint="--out") from None
    if out.is_dir():
        count = sum(1 for path in out.rglob("*") if path.is_file())
        console.print(f"[green]saved[/green] {out}: {count} files, every sha256 verified", highlight=False)
    else:
        console.print(f"[green]saved[/green] {out} (sha256 verified)", highlight=False)


def _numbers(values) -> str:
    return ", ".join(str(v) for v in values or [])


COMMANDS = (register, promote, approve, deny, rollback, alias, ls, show, history, download)


def install(app: typer.Typer) -> None:
    for command in COMMANDS:
        app.command(command.__name__)(talks_to_registry(command))
