"""`modelog ui`: sign in to the console in a browser.

It asks the registrar for a one-time sign-in link for a bearer token's
identity and prints it (and opens it where a browser is available). The token
is MODELOG_TOKEN; on a local stack, `--as bob --roles approver` makes one for
Bob with the stack's development issuer first (`modelog token issue`, which the
platform installs). The link works once, for two minutes; the token stays in
this process and the registrar.

Exit codes: 0 a link was printed; 1 the registrar refused; 2 bad usage (no
token, or no development issuer for --as); 3 the registrar could not be reached.
"""

import subprocess
import sys
import webbrowser

import httpx
import typer
from rich.console import Console

from modelog.cli.exits import REFUSED, USAGE, reaching
from modelog.settings import ClientSettings

console = Console(stderr=True)
LINK_TOKEN_TTL_S = 120  # the token `--as` makes only has to last until the registrar made the link


def ui(as_: str | None = typer.Option(None, "--as", help="sign in as this subject (local stack: the development issuer)"),
       roles: str = typer.Option("reader", help="with --as: comma-separated roles"),
       grant: list[str] = typer.Option([], help="with --as: model:NAME or prefix:PREFIX, repeatable; none: all models"),
       page: str = typer.Option("/console/models", help="the console page to land on"),
       open_browser: bool = typer.Option(True, "--open/--no-open", help="open the link in a browser if there is one")) -> None:
    """Print (and open) a one-time sign-in link to the console."""
    settings = ClientSettings.from_environment()
    token = development_token(as_, roles, grant) if as_ else settings.token
    if not token:
        console.print("no token: set MODELOG_TOKEN, or on a local stack use --as SUBJECT --roles ROLES", highlight=False)
        raise typer.Exit(USAGE)
    with reaching("registrar", {"MODELOG_REGISTRAR_URL": settings.registrar_url}):
        response = httpx.post(f"{settings.registrar_url}/console/sign-in/links", params={"next": page},
                              headers={"Authorization": f"Bearer {token}"}, timeout=30)
    if not response.is_success:
        said = response.json().get("error", {}) if "json" in response.headers.get("content-type", "") else {}
        console.print(f"refused {said.get('code', response.status_code)}: {said.get('message', response.text)}",
                      highlight=False)
        raise typer.Exit(REFUSED)
    link = response.json()
    print(link["url"])
    console.print(f"one-time sign-in link for {link['subject']} ({', '.join(link['roles']) or 'no roles'}); "
                  f"it works once, within {link['expires_in_s']} s", highlight=False)
    if open_browser and has_browser():
        webbrowser.open(link["url"])


def development_token(subject: str, roles: str, grants: list[str]) -> str:
    """A short-lived token from the local stack's development issuer, made by
    the platform's `modelog token issue` (the SDK alone cannot sign)."""
    command = [sys.executable, "-m", "modelog", "token", "issue", "--sub", subject, "--roles", roles,
               "--ttl", str(LINK_TOKEN_TTL_S), *(arg for g in grants for arg in ("--grant", g))]
    made = subprocess.run(command, capture_output=True, text=True)
    if made.returncode != 0:
        console.print(made.stderr.strip() or "`modelog token issue` failed: --as needs the platform "
                      "(pip install modelog-platform, or run from a modelog checkout)", highlight=False)
        raise typer.Exit(USAGE)
    return made.stdout.strip()


def has_browser() -> bool:
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def install(app: typer.Typer) -> None:
    app.command("ui")(ui)
