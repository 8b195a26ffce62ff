"""`modelog card ...`: a version's model card, revised after registration.

`revise` sends a new text (a Markdown file, or `-` for standard input) with a
summary of what changed; each revision is a fact in the trail with its author.
`show` prints the card as the version has it now, or as it stood at a
revision (`--at` a seq that `history` lists, or an ISO-8601 instant: the
auditor's as-of answer). `history` lists every revision: seq, when, who, what.
The card is printed as its raw Markdown, so `show > card.md` gives the file back.

Exit codes, as every `modelog` command's (exits.py): 0 done; 1 refused or not
found (the code is printed); 2 bad usage (a file that is not UTF-8 text, a card
the API cannot take); 3 the registry, or for `show --at` and `history` the
auditor, could not be reached.
"""

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from modelog.cli.audit import AuditClient
from modelog.cli.exits import REFUSED, USAGE
from modelog.cli.registry import client, said, talks_to_registry

console = Console()
card_app = typer.Typer(help="A version's model card: revise it, show it, list its revisions.",
                       no_args_is_help=True)


def revise(model: str, version: int,
           file: Path = typer.Argument(..., allow_dash=True, help="the new card, Markdown; - reads standard input"),
           summary: str = typer.Option(..., help="what changed, for the trail"),
           if_match: int = typer.Option(None, "--if-match", help="only if the model is still at this seq"),
           idempotency_key: str = typer.Option(None, help="a retry with the same key is recorded once")) -> None:
    """Replace VERSION's model card with the text of FILE."""
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        console.print(f"cannot read the card from {file}: {error}", highlight=False)
        raise typer.Exit(USAGE) from None
    with client() as registry:
        said(registry.revise_model_card(model, version, text, summary=summary, if_match=if_match,
                                        idempotency_key=idempotency_key))


def show(model: str, version: int,
         at: str = typer.Option(None, help="a revision's seq (see `history`) or an ISO-8601 instant")) -> None:
    """Print VERSION's model card, now or as it stood at a revision."""
    if at is None:
        with client() as registry:
            card = registry.get_version(model, version).get("model_card")
    else:
        point = {"seq": int(at)} if at.isdigit() else {"at": at}
        answer = AuditClient().get(f"/models/{model}/state", **point)
        stood = answer["state"]["versions"].get(str(version))
        if stood is None:
            console.print(f"{model} had no version {version} at seq {answer['seq']}", highlight=False)
            raise typer.Exit(REFUSED)
        card = stood["model_card"]
    if card is None:
        console.print(f"{model} version {version} has no model card", highlight=False)
        raise typer.Exit(REFUSED)
    typer.echo(card, nl=not card.endswith("\n"))


def history(model: str, version: int) -> None:
    """Every revision of VERSION's model card, oldest first."""
    table = Table("seq", "time (UTC)", "by", "characters", "summary")
    auditor, after = AuditClient(), 0
    while page := auditor.get(f"/models/{model}/timeline", after_seq=after)["events"]:
        for event in page:
            p = event["payload"]
            if event["type"] == "ModelCardRevised" and p["version"] == version:
                table.add_row(str(event["seq"]), event["occurred_at"][:19], event["actor"]["subject"],
                              str(len(p["model_card"])), p["summary"])
        after = page[-1]["seq"]
    console.print(table)


def install(app: typer.Typer) -> None:
    card_app.command("revise")(talks_to_registry(revise))
    card_app.command("show")(talks_to_registry(show))
    card_app.command("history")(history)
    app.add_typer(card_app, name="card")
