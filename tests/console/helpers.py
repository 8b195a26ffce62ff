"""What the console's tests share: a sign-in link as `modelog ui` prints it,
and a signed-in HTTP client for the tests that need no browser."""

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from typer.testing import CliRunner

from modelog.cli import with_installed_commands


def sign_in_link(subject: str, *roles: str, grants: tuple[str, ...] = ()) -> str:
    """The one-time link `modelog ui --as SUBJECT --roles ...` prints."""
    args = ["ui", "--as", subject, "--roles", ",".join(roles), "--no-open"]
    for grant in grants:
        args += ["--grant", grant]
    result = CliRunner().invoke(with_installed_commands(), args, env={"MODELOG_TOKEN": ""})
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[0]


@contextmanager
def signed_in(stack, subject: str, *roles: str) -> Iterator[httpx.Client]:
    """An HTTP client with a console session, as a browser would hold one."""
    with httpx.Client(base_url=stack.url("registrar"), timeout=30) as client:
        opened = client.get(sign_in_link(subject, *roles))
        assert opened.status_code == 303, opened.text
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)
