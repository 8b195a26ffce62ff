"""`modelog serving show NAME`: what is live where. Each serving instance of
the model with the version it last reported serving, since when, where it
runs and what it follows; the watchers report when what they serve changes
(docs/serving.md, "What is live where").

Exit codes: 0 shown; 1 not found (the code is printed); 3 the registry could
not be reached.
"""

import json

import typer
from rich.console import Console
from rich.table import Table

from modelog.cli.registry import client, talks_to_registry

console = Console()
serving_app = typer.Typer(help="What is live where: the instances serving a model.", no_args_is_help=True)


def show(model: str, as_json: bool = typer.Option(False, "--json", help="the projector's answer as JSON")) -> None:
    """Print each instance serving MODEL, by version, newest version first."""
    with client() as registry:
        answer = registry.serving(model)
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    if not answer["instances"]:
        console.print(f"{model}: no serving instance has reported yet", highlight=False)
        return
    table = Table("version", "instance", "host", "target", "since")
    for served in answer["versions"]:
        for report in (r for r in answer["instances"] if r["version"] == served["version"]):
            table.add_row(str(report["version"]), report["instance"], report["host"] or "-", report["target"] or "-",
                          report["since"])
    console.print(f"{model}: " + "; ".join(f"v{v['version']} on {len(v['instances'])} instance"
                                           f"{'s' if len(v['instances']) != 1 else ''}" for v in answer["versions"]),
                  highlight=False)
    console.print(table)


def install(app: typer.Typer) -> None:
    serving_app.command("show")(talks_to_registry(show))
    app.add_typer(serving_app, name="serving")
