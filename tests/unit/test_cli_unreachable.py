"""Whichever service a `modelog` command asks, a service that cannot be reached
is exit code 3 and a message naming the service, the URL tried, the variable
that sets it and `modelog up`: the registry's commands, the auditor's
questions (also those `card` asks it) and `ui` alike (cli/exits.py)."""

import socket

import pytest
from typer.testing import CliRunner

from modelog.cli import with_installed_commands
from modelog.cli.audit import exit_code
from modelog.cli.exits import REFUSED, UNREACHABLE, USAGE


@pytest.fixture
def closed_url():
    """A URL at which nothing listens: a port held by a socket that never
    listens, so a connection is refused and no other process can take it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def run(args: list[str], url: str):
    nowhere = {f"MODELOG_{service}_URL": url for service in ("REGISTRAR", "PROJECTOR", "AUDITOR")}
    return CliRunner().invoke(with_installed_commands(), args,
                              env={**nowhere, "MODELOG_TOKEN": "a-token", "MODELOG_RETRY_FOR_S": "0"})


@pytest.mark.parametrize("args", [["audit", "timeline", "m"], ["audit", "why", "m", "1"], ["audit", "seal"],
                                  ["card", "history", "m", "1"], ["card", "show", "m", "1", "--at", "3"]])
def test_a_question_to_an_auditor_that_cannot_be_reached_exits_3_and_says_what_to_do(closed_url, args):
    result = run(args, closed_url)
    assert result.exit_code == UNREACHABLE == 3, result.output
    said = " ".join(result.output.split())  # as one line, however the terminal wrapped it
    assert f"cannot reach the auditor at {closed_url} (MODELOG_AUDITOR_URL)" in said
    assert "`modelog up` starts a local stack" in said and "set MODELOG_AUDITOR_URL to where it listens" in said


@pytest.mark.parametrize("args, service", [(["ls"], "registry"), (["show", "m"], "registry"),
                                           (["ui", "--no-open"], "registrar")])
def test_the_registry_and_the_console_link_exit_3_the_same_way(closed_url, args, service):
    result = run(args, closed_url)
    assert result.exit_code == UNREACHABLE, result.output
    said = " ".join(result.output.split())
    assert f"cannot reach the {service} at {closed_url} (MODELOG_REGISTRAR_URL)" in said
    assert "`modelog up` starts a local stack" in said


def test_an_auditor_that_answers_but_fails_is_3_as_the_registry_and_its_refusals_keep_their_codes():
    assert exit_code(503) == exit_code(500) == UNREACHABLE
    assert exit_code(422) == exit_code(400) == USAGE
    assert exit_code(404) == exit_code(403) == REFUSED
