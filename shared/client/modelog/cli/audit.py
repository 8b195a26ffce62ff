"""`modelog audit ...`: the auditor's questions from a terminal or a script.

Everything is read from the auditor's HTTP API, with the caller's token
(MODELOG_TOKEN). Exit codes a script can use, as every `modelog` command's
(exits.py): 0 answered, 1 not found or refused, 2 usage (including a point or
instant the auditor cannot parse), 3 the auditor could not be reached or
failed."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from modelog.cli.exits import REFUSED, UNREACHABLE, USAGE, reaching
from modelog.settings import ClientSettings

console = Console()


class AuditClient:
    """The auditor's /v1/audit API; every refusal becomes a typer.Exit with its code."""

    def __init__(self, url: str | None = None, token: str | None = None):
        settings = ClientSettings.from_environment()
        token = token or settings.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url or settings.auditor_url
        self.http = httpx.Client(base_url=f"{self.url}/v1/audit", timeout=60, headers=headers)

    def get(self, path: str, **params) -> dict:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def call(self, method: str, path: str, **request) -> dict:
        with reaching("auditor", {"MODELOG_AUDITOR_URL": self.url}):
            response = self.http.request(method, path, **request)
        if response.is_success:
            return response.json()
        refusal = response.json().get("error", {}) if _is_json(response) else {}
        console.print(f"[red]{refusal.get('code', response.status_code)}[/red]: "
                      f"{refusal.get('message', response.text)}", highlight=False)
        raise typer.Exit(exit_code(response.status_code))

    def pages(self, path: str, **params) -> Iterator[dict]:
        """Each page of a paged answer, following `next` until the last."""
        while True:
            page = self.get(path, **params)
            yield page
            if not page.get("next"):
                return
            params["after"] = page["next"]


def exit_code(status: int) -> int:
    """A question the auditor cannot parse is usage; its failing (5xx) is as
    good as unreachable, as for the registry; any other no is a refusal."""
    if status in (400, 422):
        return USAGE
    return UNREACHABLE if status >= 500 else REFUSED


def _is_json(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")


def describe(event: dict) -> str:
    """One line of what an event says, for tables."""
    p = event["payload"]
    match event["type"]:
        case "VersionRegistered":
            return f"v{p['version']} registered ({p['artifact']['sha256'][:12]})"
        case "TransitionRequested":
            return f"v{p['version']} {p['from_stage']} -> {p['to_stage']} requested, " \
                   f"{p['approvals_required']} approval(s) needed"
        case "ApprovalGranted":
            return f"v{p['version']} approved ({p['approvals']}/{p['approvals_required']})"
        case "ApprovalDenied":
            return f"v{p['version']} denied"
        case "StageChanged":
            return f"v{p['version']} {p['from_stage']} -> {p['to_stage']} ({p['why']})"
        case "AliasSet" | "AliasDeleted":
            return f"@{p['alias']} {'->' if event['type'] == 'AliasSet' else 'removed from'} v{p['version']}"
        case "ModelCardRevised":
            return f"v{p['version']} model card revised: {p['summary']}"
        case "TrafficSplitSet":
            routes = ", ".join(f"v{r['version']} {r['weight']}%" for r in p["routes"])
            shadows = "".join(f", shadow v{v}" for v in p["shadows"])
            return f"traffic split {routes}{shadows}" if routes else "traffic split cleared"
        case "ServingReported":
            where = f" on {p['host']}" if p.get("host") else ""
            following = f" ({p['target']})" if p.get("target") else ""
            return f"instance {p['instance']}{where} serves v{p['version']} since {p['since']}{following}"
        case "CommandRejected":
            return f"{p['command_type']} refused: {p['reason']}"
    version = f"v{p['version']} " if p.get("version") is not None else ""
    return f"{version}{event['type']}"


def events_table(events: list[dict], with_model: bool) -> Table:
    table = Table("time (UTC)", *(["model"] if with_model else []), "seq", "actor", "type", "what")
    for e in events:
        table.add_row(e["occurred_at"][:23], *([e["model"]] if with_model else []), str(e["seq"]),
                      e["actor"]["subject"], e["type"], describe(e))
    return table


def show(answer: dict | list, as_json: bool, render) -> None:
    if as_json:
        console.print_json(json.dumps(answer))
    else:
        render(answer)


JSON = typer.Option(False, "--json", help="print the auditor's JSON answer instead of tables")


def timeline(model: str, as_json: bool = JSON) -> None:
    """Every event of MODEL in seq order."""
    client = AuditClient()
    events: list[dict] = []
    while page := client.get(f"/models/{model}/timeline", after_seq=events[-1]["seq"] if events else 0)["events"]:
        events += page
    show(events, as_json, lambda e: console.print(events_table(e, with_model=False)))


def actor(subject: str, as_json: bool = JSON) -> None:
    """Everything SUBJECT did, across models, oldest first."""
    events = [e for page in AuditClient().pages(f"/actors/{subject}/events") for e in page["events"]]
    show(events, as_json, lambda e: console.print(events_table(e, with_model=True)))


def as_of(model: str, at: str = typer.Option(None, help="ISO-8601 instant (naive means UTC)"),
          seq: int = typer.Option(None, min=0, help="a seq of the model"), as_json: bool = JSON) -> None:
    """MODEL as it stood at an instant (--at) or after a seq (--seq)."""
    if (at is None) == (seq is None):
        console.print("give exactly one of --at or --seq")
        raise typer.Exit(USAGE)
    show(AuditClient().get(f"/models/{model}/state", at=at, seq=seq), as_json, _render_state)


def _render_state(answer: dict) -> None:
    state = answer["state"]
    if not state["exists"]:
        console.print(f"{answer['model']} did not exist yet (seq {answer['seq']})")
        return
    console.print(f"[bold]{answer['model']}[/bold] at seq {answer['seq']}"
                  f"{' (deleted)' if state['deleted'] else ''}; policy: "
                  f"{'its own' if state['policy'] else 'the default'}", highlight=False)
    aliases: dict[str, list[str]] = {}
    for name, alias in state["aliases"].items():
        aliases.setdefault(str(alias["version"]), []).append(f"@{name}")
    table = Table("version", "stage", "aliases", "metrics", "registered by")
    for number, v in state["versions"].items():
        table.add_row(number + (" (deleted)" if v["deleted"] else ""), v["stage"], " ".join(aliases.get(number, [])),
                      ", ".join(f"{k}={m:g}" for k, m in v["metrics"].items()), v["registered_by"])
    console.print(table)
    for pending in state["pending"].values():
        console.print(f"pending: v{pending['version']} -> {pending['to_stage']}, requested by "
                      f"{pending['requested_by']}, {len(pending['approvals'])}/{pending['approvals_required']} "
                      "approvals", highlight=False)


def diff(model: str, from_: str = typer.Option(..., "--from", help="a seq or an ISO-8601 instant"),
         to: str = typer.Option(..., help="a seq or an ISO-8601 instant"), as_json: bool = JSON) -> None:
    """What changed in MODEL from one point to another."""
    show(AuditClient().get(f"/models/{model}/diff", **{"from": from_, "to": to}), as_json, _render_diff)


def _render_diff(answer: dict) -> None:
    console.print(f"{answer['model']}: seq {answer['from_seq']} -> {answer['to_seq']}, "
                  f"{len(answer['changes'])} change(s)", highlight=False)
    table = Table("field", "before", "after")
    for c in answer["changes"]:
        table.add_row(c["path"], *("-" if c["kind"] == gone else json.dumps(c[side])
                                   for side, gone in (("before", "added"), ("after", "removed"))))
    console.print(table)


def why(model: str, version: int, as_json: bool = JSON) -> None:
    """Why VERSION of MODEL is in its stage: the chain of events that put it there."""
    show(AuditClient().get(f"/models/{model}/versions/{version}/why"), as_json, _render_why)


def _render_why(answer: dict) -> None:
    console.print(f"[bold]{answer['model']} v{answer['version']} is in {answer['stage']}[/bold]")
    for line in answer["summary"]:
        console.print(f"  {line}", highlight=False)


def export(out: Path = typer.Option(..., help="the JSON Lines file to write"),
           model: str = typer.Option(None, help="only this model"),
           since: str = typer.Option(None, help="from this ISO-8601 instant (inclusive)"),
           until: str = typer.Option(None, help="to this ISO-8601 instant (exclusive)")) -> None:
    """Write events to a JSON Lines file, one event per line, by time."""
    written = 0
    columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress, out.open("w") as lines:
        task = progress.add_task("export", total=None)
        for page in AuditClient().pages("/events", model=model, since=since, until=until):
            if page["total"] is not None:
                progress.update(task, total=page["total"])
            lines.writelines(json.dumps(e, separators=(",", ":")) + "\n" for e in page["events"])
            written += len(page["events"])
            progress.update(task, completed=written)
    console.print(f"{written} events written to {out}", highlight=False)


def seal(as_json: bool = JSON) -> None:
    """Seal every model's chain head now (the auditor signs it and keeps it in S3)."""
    show(AuditClient().call("POST", "/seals"), as_json, _render_seal)


def _render_seal(answer: dict) -> None:
    console.print(f"seal {answer['number']}: {answer['models']} models, root {answer['root']}, "
                  f"digest {answer['digest']}", highlight=False)
    console.print(f"  s3 object {answer['object']}, locked: {str(answer['locked']).lower()}"
                  + ("" if answer["locked"] else " (the bucket has no S3 Object Lock: kept, not WORM)"),
                  highlight=False)


def seals(as_json: bool = JSON) -> None:
    """Every seal in S3, oldest first, and any seal object that is not as written."""
    show(AuditClient().get("/seals"), as_json, _render_seals)


def _render_seals(answer: dict) -> None:
    table = Table("seal", "sealed at (UTC)", "models", "root", "digest")
    for s in answer["seals"]:
        table.add_row(str(s["number"]), s["sealed_at"][:23], str(s["models"]), s["root"][:16], s["digest"][:16])
    console.print(table)
    for problem in answer["problems"]:
        console.print(f"[red]PROBLEM[/red] {problem['text']}", highlight=False)


def denials(model: str = typer.Option(None, "--model", help="only refusals of writes to this model"),
            subject: str = typer.Option(None, "--subject", help="only this caller's (or \"anonymous\")"),
            since: str = typer.Option(None, help="from this ISO-8601 instant"),
            limit: int = typer.Option(100, min=1, max=10000, help="the newest this many"),
            as_json: bool = JSON) -> None:
    """Writes the registrar refused before they became commands: who, what, when, why."""
    answer = AuditClient().get("/denials", model=model, subject=subject, since=since, limit=limit)
    show(answer["denials"], as_json, _render_denials)


def _render_denials(records: list[dict]) -> None:
    table = Table("time (UTC)", "who", "what", "model", "status", "why")
    for d in records:
        if d["kind"] == "summary":
            table.add_row(d["at"][:23], d["subject"], "", "", "", d["message"])
            continue
        who = d["subject"] + (f" ({','.join(d['roles'])})" if d["roles"] else "")
        what = f"{d['method']} {d['route']}" + (f" ({d['command_type']})" if d.get("command_type") else "")
        model = (d.get("model") or "") + (f" v{d['version']}" if d.get("version") is not None else "")
        table.add_row(d["at"][:23], who, what, model, str(d["status"]), f"{d['code']}: {d['message']}")
    console.print(table)


def register(group: typer.Typer) -> None:
    for command in (timeline, actor, diff, why, export, seal, seals, denials):
        group.command(command.__name__)(command)
    group.command("as-of")(as_of)
