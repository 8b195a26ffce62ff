"""The exit codes every `modelog` command shares, and the one way a command
says that a service could not be reached.

A script that runs `modelog` tells "the registry said no" (1) from "I called
it wrong" (2) from "nothing answered" (3) by the exit code alone, whichever
service it was asking: the registrar and projector for the registry commands,
the auditor for the trail's questions. So the codes, and the handling of a
connection that fails, live here once; each command only names the service
it asks and where it looked for it.

The message goes to standard error, so a command whose answer is redirected
(`modelog audit timeline m --json > trail.json`) leaves no error text in the
file, and it says what to do next: start a local stack, or point the named
variable at the service.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx
import typer
from rich.console import Console

REFUSED, USAGE, UNREACHABLE = 1, 2, 3
errors = Console(stderr=True)


@contextmanager
def reaching(service: str, where: Mapping[str, str]) -> Iterator[None]:
    """Within this block, a request that reaches nothing exits UNREACHABLE,
    naming `service` and each URL tried with the variable that sets it."""
    try:
        yield
    except httpx.TransportError as error:
        raise unreachable(service, where, error) from None


def unreachable(service: str, where: Mapping[str, str], error: Exception) -> typer.Exit:
    """Say that `service` could not be reached and what to do; the exit to raise."""
    tried = " / ".join(f"{url} ({variable})" for variable, url in where.items())
    errors.print(f"[red]cannot reach the {service}[/red] at {tried}: {str(error) or type(error).__name__}. "
                 f"Is it running? `modelog up` starts a local stack; elsewhere, set "
                 f"{' and '.join(where)} to where it listens.", highlight=False)
    return typer.Exit(UNREACHABLE)

