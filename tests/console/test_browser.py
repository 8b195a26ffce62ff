"""The console in a real browser: three people, three browser contexts, one
promotion. The requester is not offered the approve button and a forged post
of it is refused by the decider; a second person approves; the first browser
shows the move without a reload. A person without the role sees no action and
a forced post is refused with 403. axe-core finds no serious or critical
accessibility fault on any page, and each page's screenshot is kept in docs/."""

import pickle
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from modelog.client import Client
from tests.console.helpers import sign_in_link
from tests.e2e.helpers import token_for, unique

pytestmark = pytest.mark.engines

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
CARD = """# Fraud detector

Gradient-boosted trees on card transactions.

| slice | recall |
|---|---|
| online | 0.91 |
| in store | 0.88 |

<script>document.title = "pwned"</script>
"""


@pytest.fixture
def promotion(stack, tmp_path):
    """Alice (publisher, approver) registered two versions; version 1 is in
    Production, version 2 waits for approval to replace it."""
    model = unique("fraud-detector")
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(pickle.dumps({"weights": [0.4, 0.6]}))
    dana = Client(stack.url("registrar"), stack.url("projector"), token=token_for("dana", "approver"))
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("alice", "publisher", "approver")) as alice:
        alice.register_version(model, artifact, run_id="train-41", metrics={"auc": 0.90, "recall": 0.80},
                               params={"max_depth": "6"})
        alice.request_transition(model, 1, "Staging")
        first = alice.request_transition(model, 1, "Production")
        dana.approve(model, first["request_id"], comment="first champion")
        artifact.write_bytes(pickle.dumps({"weights": [0.5, 0.5]}))
        alice.register_version(model, artifact, run_id="train-42", metrics={"auc": 0.93, "recall": 0.84},
                               params={"max_depth": "8"}, description="deeper trees")
        alice.revise_model_card(model, 2, CARD, summary="first card")
        alice.request_transition(model, 2, "Staging")
        waiting = alice.request_transition(model, 2, "Production", comment="beats v1 on auc")
    dana.close()
    return model, waiting["request_id"]


def signed_in_page(browser, subject: str, *roles: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(sign_in_link(subject, *roles))
    assert "/sign-in" not in page.url and "token=" not in page.url
    return page


def check_accessibility(page: Page, axe_source: str, name: str) -> None:
    """axe-core, injected by the test (the console never serves it): no serious
    or critical violation; and the page's screenshot for docs/console.md."""
    page.evaluate(axe_source)  # evaluated by the browser's devtools protocol, outside the page's CSP
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
           for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: {bad}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_a_promotion_by_three_people_in_three_browsers(stack, browser, promotion, axe_source):
    model, request_id = promotion
    alice = signed_in_page(browser, "alice", "publisher", "approver")
    bob = signed_in_page(browser, "bob", "approver")
    carol = signed_in_page(browser, "carol", "reader")

    # The requester sees her request, with the reason she may not approve it.
    # From the model's page, as a reviewer would: its link opens the inbox at this model's requests.
    alice.goto(f"{base(alice)}/console/models/{model}")
    alice.get_by_role("link", name="Review in Approvals").click()
    expect(alice).to_have_url(f"{base(alice)}/console/approvals?model={model}")
    request = alice.locator("article.request", has_text=model)
    expect(request).to_contain_text("You requested this move")
    expect(request.get_by_role("button", name="Approve")).to_have_count(0)
    expect(request.get_by_role("button", name="Deny")).to_have_count(1)

    # A forged post of the approval she was not offered: the decider refuses it, in words.
    csrf = request.locator("input[name=csrf_token]").first.input_value()
    forged = alice.request.post(f"{base(alice)}/console/models/{model}/requests/{request_id}/approve",
                                form={"csrf_token": csrf, "comment": "me, myself"}, max_redirects=0)
    assert forged.status == 403
    assert "alice requested this transition" in forged.text() and "self_approval" in forged.text()

    # Alice watches the model's page while Bob approves.
    alice.goto(f"{base(alice)}/console/models/{model}")
    production = alice.locator("td.stage-Production")
    expect(production).to_have_text("v1")
    alice.evaluate("window.stillTheSamePage = true")

    bob.goto(f"{base(bob)}/console/approvals?model={model}")
    bobs = bob.locator("article.request", has_text=model)
    expect(bobs.get_by_role("table", name=re.compile("Gate results"))).to_contain_text("passed")
    expect(bobs.get_by_role("table", name=re.compile("champion in Production"))).to_contain_text("+0.03")
    bobs.get_by_text("Model card of version 2").click()
    expect(bobs.get_by_role("table").last).to_contain_text("in store")
    check_accessibility(bob, axe_source, "approvals")
    bobs.get_by_label("Comment").fill("auc up, recall up: approved")
    bobs.get_by_role("button", name="Approve").click()
    expect(bob.locator("article.request", has_text=model)).to_have_count(0)

    # Alice's page follows the change feed: version 2 is in Production, no reload.
    expect(production).to_have_text("v2", timeout=5000)
    assert alice.evaluate("window.stillTheSamePage") is True
    expect(alice.get_by_role("status")).to_contain_text("Updated")

    # Carol reads, holds no role that approves: no action offered, and a forced post is refused.
    carol.goto(f"{base(carol)}/console/approvals")
    expect(carol.get_by_text("You hold no role that approves")).to_be_visible()
    expect(carol.get_by_role("button", name="Approve")).to_have_count(0)
    carols_csrf = carol.locator("input[name=csrf_token]").first.input_value()
    forced = carol.request.post(f"{base(carol)}/console/models/{model}/requests/{request_id}/approve",
                                form={"csrf_token": carols_csrf}, max_redirects=0)
    assert forced.status == 403 and "carol needs the &#39;approver&#39; role" in forced.text()
    carol.set_content(forced.text())  # the refusal page as the browser would show it
    check_accessibility(carol, axe_source, "refused")

    # Every page reads, and passes axe, in Alice's browser.
    for name, path in (("models", "/console/models"), ("model", f"/console/models/{model}"),
                       ("version", f"/console/models/{model}/versions/2"),
                       ("trail", f"/console/models/{model}/trail")):
        alice.goto(f"{base(alice)}{path}")
        check_accessibility(alice, axe_source, name)

    # The model card is rendered, its raw HTML is not run.
    alice.goto(f"{base(alice)}/console/models/{model}/versions/2")
    expect(alice.get_by_role("heading", name="Fraud detector")).to_be_visible()
    assert alice.title() != "pwned"
    alice.goto(f"{base(alice)}/console/models/{model}/versions/1")  # archived now: beside the new champion
    expect(alice.get_by_role("table", name=re.compile("Beside version 2"))).to_contain_text("-0.03")

    alice.goto(f"{base(alice)}/console/models/{model}/trail")
    expect(alice.get_by_text("Verified: every event from seq 1")).to_be_visible()
    alice.locator("summary", has_text="ApprovalGranted").last.click()
    expect(alice.locator("details[open] pre")).to_contain_text("auc up, recall up")

    anonymous = browser.new_context().new_page()
    anonymous.goto(f"{base(alice)}/console/models")
    expect(anonymous.get_by_text("modelog ui --as")).to_be_visible()
    check_accessibility(anonymous, axe_source, "sign-in")


def base(page: Page) -> str:
    return page.url.split("/console")[0]
