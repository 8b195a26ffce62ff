"""Signing in to the console through the stack's real OpenID Connect provider,
in a real browser: the console sends the browser to the issuer, the person
types their password into the provider's own form, and comes back signed in
with the roles their ID token's groups carry, on a clean URL. A person whose
groups give no approving role sees no approve button, and a forced post is
refused with 403; a return that no sign-in of this browser started is refused."""

import pickle

import pytest
from playwright.sync_api import Page, expect

from modelog.client import Client
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.oidc import Oidc
from modelog_platform.settings import EngineEndpoints, LocalStack
from tests.e2e.helpers import token_for, unique

pytestmark = pytest.mark.engines


def password(username: str) -> str:
    """The person's password, as the stack made it (its secrets, never in the code)."""
    lay = Layout(EngineEndpoints(), LocalStack(), lambda _: None)
    return Oidc().password_file(lay, username).read_text().strip()


def sign_in_through_the_issuer(browser, stack, username: str, next_path: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(f"{stack.url('registrar')}/console/sign-in/oidc?next={next_path}")
    # The provider's page, not the console's: the password goes to the issuer only.
    assert not page.url.startswith(stack.url("registrar")), page.url
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password(username))
    page.get_by_role("button", name="Sign in").click()
    # Back through the issuer's consent to the console's callback, then to the page asked for.
    expect(page).to_have_url(f"{stack.url('registrar')}{next_path}", timeout=30_000)
    assert "code=" not in page.url and "state=" not in page.url
    return page


@pytest.fixture
def waiting_request(stack, tmp_path):
    model = unique("oidc-console")
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(pickle.dumps({"weights": [1.0]}))
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("alice", "publisher")) as alice:
        alice.register_version(model, artifact)
        alice.request_transition(model, 1, "Staging")
        waiting = alice.request_transition(model, 1, "Production")
    return model, waiting["request_id"]


def test_people_sign_in_at_the_issuer_and_act_with_the_roles_their_groups_give(stack, browser, waiting_request):
    model, request_id = waiting_request

    bob = sign_in_through_the_issuer(browser, stack, "bob", "/console/approvals")
    expect(bob.get_by_text("bob", exact=False).first).to_be_visible()
    # The model's requests: the whole inbox holds other tests' too, ten a page.
    bob.goto(f"{stack.url('registrar')}/console/approvals?model={model}")
    request = bob.locator("article.request", has_text=model)
    expect(request.get_by_role("button", name="Approve")).to_have_count(1)

    dave = sign_in_through_the_issuer(browser, stack, "dave", "/console/approvals")
    dave.goto(f"{stack.url('registrar')}/console/approvals?model={model}")
    expect(dave.get_by_role("button", name="Approve")).to_have_count(0)
    csrf = dave.locator("input[name=csrf_token]").first.input_value()
    forced = dave.request.post(f"{stack.url('registrar')}/console/models/{model}/requests/{request_id}/approve",
                               form={"csrf_token": csrf}, max_redirects=0)
    assert forced.status == 403 and "dave needs the &#39;approver&#39; role" in forced.text()

    request.get_by_label("Comment").fill("signed in at the issuer")
    request.get_by_role("button", name="Approve").click()
    expect(bob.locator("article.request", has_text=model)).to_have_count(0)
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("reader", "reader")) as reader:
        assert [v["version"] for v in reader.in_stage(model, "Production")["versions"]] == [1]


def test_a_return_from_the_issuer_that_this_browser_did_not_start_is_refused(stack, browser):
    page = browser.new_context().new_page()
    answer = page.goto(f"{stack.url('registrar')}/console/callback?code=stolen&state=someone-elses")
    assert answer is not None and answer.status == 401
    expect(page.get_by_text("started no sign-in")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "modelog_session"]
