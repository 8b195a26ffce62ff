"""`modelog token`: the development issuer is the stack home's, found from
wherever the command runs; issuing never makes a new issuer, and never mints a
role modelog does not know."""

import pytest
from typer.testing import CliRunner

from modelog.cli import with_installed_commands
from modelog_platform.identity.dev import DevIssuer
from modelog_platform.identity.permissions import ROLES, effective_roles
from modelog_platform.identity.tokens import claims_for, sign
from modelog_platform.settings import LocalStack, StackHome, find_stack_home


def modelog(*args: str):
    return CliRunner().invoke(with_installed_commands(), list(args))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELOG_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_issue_refuses_where_no_issuer_exists_and_says_what_to_do(home):
    result = modelog("token", "issue", "--sub", "alice", "--roles", "reader")
    assert result.exit_code == 2
    # Compared without whitespace: the terminal's width may wrap a long path anywhere.
    message = "".join(result.output.split())
    for hint in ("MODELOG_HOME", str(home / "identity"), "modelog up", "modelog token init"):
        assert "".join(hint.split()) in message, (hint, result.output)
    assert not (home / "identity").exists()  # a new issuer would mint tokens no service trusts


def test_init_makes_the_issuer_whose_tokens_issue_then_prints(home):
    initialised = modelog("token", "init")
    assert initialised.exit_code == 0 and (home / "identity" / "public.pem").exists()
    issued = modelog("token", "issue", "--sub", "alice", "--roles", "reader, auditor")
    assert issued.exit_code == 0, issued.output
    identity = DevIssuer.local().verifier().verify(issued.output.strip())
    assert (identity.subject, identity.roles) == ("alice", ("reader", "auditor"))


def test_issue_refuses_a_role_modelog_does_not_know_and_names_the_known_ones(home):
    assert modelog("token", "init").exit_code == 0
    result = modelog("token", "issue", "--sub", "alice", "--roles", "reader,superuser")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "superuser" in message and all(role in message for role in ROLES), message


def test_a_real_issuers_role_modelog_does_not_know_is_verified_and_grants_nothing(issuer):
    claims = claims_for(issuer="modelog-dev", audience="modelog", subject="alice", roles=["offline_access", "reader"])
    identity = issuer.verifier().verify(sign(claims, issuer.signing_key()))
    assert identity.roles == ("offline_access", "reader")
    assert effective_roles(identity.roles) == {"reader"}


def test_the_stack_home_is_the_nearest_modelog_directory_up_from_the_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("MODELOG_HOME", raising=False)
    (tmp_path / "checkout" / ".modelog").mkdir(parents=True)
    deep = tmp_path / "checkout" / "services" / "registrar"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert StackHome().home == LocalStack().home == tmp_path / "checkout" / ".modelog"
    assert DevIssuer.local().directory == tmp_path / "checkout" / ".modelog" / "identity"


def test_without_a_modelog_directory_the_home_is_made_in_the_cwd(tmp_path):
    assert find_stack_home(tmp_path) == tmp_path / ".modelog"


def test_modelog_home_wins_over_a_modelog_directory_found(tmp_path, monkeypatch):
    (tmp_path / ".modelog").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELOG_HOME", str(tmp_path / "elsewhere"))
    assert StackHome().home == tmp_path / "elsewhere"
