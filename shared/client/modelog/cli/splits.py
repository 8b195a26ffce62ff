"""`modelog split ...`: a model's traffic split, an operator's decision.

`set` shares the model's requests between versions in Staging or Production:
`modelog split set fraud-detector 1=90 2=10 --shadow 3` (weights in percent,
summing to 100). `modelog split set fraud-detector 1=100`, the Production
version alone, removes the split. `show` prints the split in force: each
routed version with its weight and stage, and the shadows; with no split, the
Production version at 100.

Exit codes: 0 done; 1 refused or not found (the code is printed); 2 bad usage;
3 the registry could not be reached.
"""

import json

import typer
from rich.console import Console
from rich.table import Table

from modelog.cli.registry import client, pairs, said, talks_to_registry

console = Console()
split_app = typer.Typer(help="A model's traffic split: set it (operators), show it.", no_args_is_help=True)


def set_split(model: str,
              route: list[str] = typer.Argument(..., help="VERSION=WEIGHT, one per routed version"),
              shadow: list[int] = typer.Option([], help="a version sent a copy of each request, repeatable"),
              comment: str = typer.Option("", help="why, for the trail"),
              if_match: int = typer.Option(None, "--if-match", help="only if the model is still at this seq"),
              idempotency_key: str = typer.Option(None, help="a retry with the same key is recorded once")) -> None:
    """Share MODEL's requests between versions: VERSION=WEIGHT ..."""
    routes = {}
    for version, weight in pairs(route, "a route", int).items():
        if not version.isdigit():
            raise typer.BadParameter(f"a route is VERSION=WEIGHT with a version number, not {version!r}")
        routes[int(version)] = weight
    with client() as registry:
        said(registry.set_traffic_split(model, routes, shadows=shadow, comment=comment, if_match=if_match,
                                        idempotency_key=idempotency_key))


def show(model: str, as_json: bool = typer.Option(False, "--json", help="the lookup's answer as JSON")) -> None:
    """Print the traffic split in force for MODEL."""
    with client() as registry:
        answer = registry.traffic_split(model)
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    kind = "split" if answer["split"] else "no split: the Production version serves every request"
    table = Table("version", "stage", "weight %", "role")
    for route in answer["routes"]:
        role = "production" if route["version"] == answer["production_version"] else "canary"
        table.add_row(str(route["version"]), route["stage"], str(route["weight"]), role)
    for version in answer["shadows"]:
        table.add_row(str(version["version"]), version["stage"], "copy", "shadow")
    console.print(f"{model} (seq {answer['seq']}): {kind}", highlight=False)
    console.print(table)


def install(app: typer.Typer) -> None:
    split_app.command("set")(talks_to_registry(set_split))
    split_app.command("show")(talks_to_registry(show))
    app.add_typer(split_app, name="split")
